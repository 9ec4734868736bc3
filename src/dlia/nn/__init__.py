"""Layers and models: ``Module``, ``Parameter``, ``Linear``, ``Embedding``, recurrent cells, losses and more.

The lecture's TensorFlow-style cells live in ``dlia.nn.rnn_cell``; PyTorch's are ``RNNCell``, ``LSTMCell``, ``GRUCell``.
"""

from dlia.nn import functional, init, rnn_cell
from dlia.nn.cells import GRUCell, LSTMCell, RNNCell
from dlia.nn.conv import AvgPool2d, BatchNorm2d, Conv2d, GlobalAvgPool2d, GlobalMaxPool2d, MaxPool2d
from dlia.nn.layers import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ModuleList,
    MSELoss,
    NLLLoss,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from dlia.nn.module import IncompatibleKeys, Module, StateDictError
from dlia.nn.parameter import Parameter
from dlia.nn.rnn import GRU, LSTM, RNN

__all__ = [
    "AvgPool2d", "BatchNorm2d", "Conv2d", "GlobalAvgPool2d", "GlobalMaxPool2d", "MaxPool2d",
    "BCEWithLogitsLoss", "CrossEntropyLoss", "Dropout", "Embedding", "Flatten", "Identity",
    "IncompatibleKeys", "LeakyReLU", "Linear", "LogSoftmax", "MSELoss", "Module", "ModuleList",
    "NLLLoss", "Parameter", "ReLU", "Sequential", "Sigmoid", "Softmax", "StateDictError", "Tanh",
    "functional", "init",
    "GRUCell", "LSTMCell", "RNNCell", "rnn_cell",
    "GRU", "LSTM", "RNN",
]
