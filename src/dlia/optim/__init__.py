"""Optimizers (SGD, Adam, AdamW, RMSprop, Adagrad), learning-rate schedules and gradient clipping."""

from dlia.optim import lr_scheduler
from dlia.optim.algorithms import SGD, Adagrad, Adam, AdamW, RMSprop
from dlia.optim.clip import clip_grad_norm_, clip_grad_value_
from dlia.optim.optimizer import Optimizer

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "clip_grad_norm_", "clip_grad_value_", "lr_scheduler"]
