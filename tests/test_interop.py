"""DLPack exchange with torch (CPU) and CuPy (GPU, skipped without one): values, dtypes, shared memory."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import dlia
from dlia import interop

DTYPES = [(np.float32, torch.float32), (np.float64, torch.float64), (np.int64, torch.int64)]
SHAPES = [(), (0,), (5,), (3, 4), (2, 3, 4), (2, 1, 3, 5)]


def sample(shape, dtype, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 10).astype(dtype)


def test_import_dlia_does_not_import_torch_or_onnx():
    code = ("import sys, dlia, dlia.interop, dlia.io.onnx, dlia.nn; "
            "assert 'torch' not in sys.modules and 'onnx' not in sys.modules, 'imported eagerly'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("dtypes", DTYPES, ids=lambda d: str(d[0].__name__))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_round_trip_through_torch_keeps_values_dtype_and_shape(dtypes, shape):
    np_dtype, torch_dtype = dtypes
    x = dlia.Tensor(sample(shape, np_dtype))
    t = interop.to_torch(x)
    assert t.dtype == torch_dtype and tuple(t.shape) == shape and t.device.type == "cpu"
    np.testing.assert_array_equal(t.numpy(), x.numpy())
    back = interop.from_torch(t)
    assert isinstance(back, dlia.Tensor) and back.dtype == np_dtype and back.shape == shape
    np.testing.assert_array_equal(back.numpy(), x.numpy())


@pytest.mark.parametrize("torch_dtype", [d[1] for d in DTYPES], ids=str)
def test_from_torch_shares_memory(torch_dtype):
    t = torch.arange(12).reshape(3, 4).to(torch_dtype)
    x = interop.from_torch(t)
    assert type(x.data) is np.ndarray and x.device.kind == "cpu"
    t[1, 2] = 99
    assert x.numpy()[1, 2] == 99
    x.data[0, 0] = -7
    assert t[0, 0].item() == -7


@pytest.mark.parametrize("np_dtype", [d[0] for d in DTYPES], ids=lambda d: d.__name__)
def test_to_torch_shares_memory(np_dtype):
    x = dlia.Tensor(np.arange(6, dtype=np_dtype).reshape(2, 3))
    t = interop.to_torch(x)
    x.data[1, 1] = 42
    assert t[1, 1].item() == 42
    t[0, 2] = -3
    assert x.numpy()[0, 2] == -3


@pytest.mark.parametrize("view", [lambda a: a.T, lambda a: a[:, ::2], lambda a: a[1:, 1:3], lambda a: a[::-1],
                                  lambda a: a[:, ::-2]], ids=["transpose", "step", "slice", "reversed", "reversed-step"])
def test_non_contiguous_views_cross_with_their_values(view):
    x = dlia.Tensor(view(np.arange(20, dtype=np.float32).reshape(4, 5)))
    expected = x.numpy().copy()
    t = interop.to_torch(x)  # negative strides go as a copy (torch would abort the process on them)
    np.testing.assert_array_equal(t.numpy(), expected)
    if min(x.data.strides) > 0:
        x.data[0, 0] = -1.0  # a strided view is shared, not copied
        assert t[0, 0].item() == -1.0
        tv = view(torch.arange(20, dtype=torch.float32).reshape(4, 5))
        y = interop.from_torch(tv)
        np.testing.assert_array_equal(y.numpy(), expected)
        assert y.data.strides == tuple(s * 4 for s in tv.stride())
        tv[0, 0] = -5.0
        assert y.numpy()[0, 0] == -5.0


def test_requires_grad_tensor_exports_data_only():
    x = dlia.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    (x * x).sum().backward()
    t = interop.to_torch(x)
    assert not t.requires_grad and t.grad is None
    np.testing.assert_array_equal(t.numpy(), [[1, 2], [3, 4]])
    tg = torch.ones(3, requires_grad=True) * 2  # a non-leaf with history
    y = interop.from_torch(tg)
    assert not y.requires_grad and y.tolist() == [2.0, 2.0, 2.0]
    z = interop.from_torch(torch.ones(2), requires_grad=True)
    (z * 3).sum().backward()
    assert z.grad.tolist() == [3.0, 3.0]


def test_tensor_speaks_dlpack_to_numpy_and_torch():
    x = dlia.tensor([1.0, 2.0, 3.0])
    assert x.__dlpack_device__() == (1, 0)
    a = np.from_dlpack(x)
    t = torch.from_dlpack(x)
    x.data[0] = 5.0
    assert a[0] == 5.0 and t[0].item() == 5.0


def test_to_dlpack_capsule_is_consumed_by_torch():
    x = dlia.tensor([[1, 2], [3, 4]])
    t = torch.from_dlpack(interop.to_dlpack(x))
    assert t.dtype == torch.int64 and t.tolist() == [[1, 2], [3, 4]]


def test_from_dlpack_takes_numpy_arrays_and_rejects_others():
    a = np.arange(4.0)
    x = interop.from_dlpack(a)
    a[3] = -1
    assert x.dtype == np.float64 and x.tolist() == [0.0, 1.0, 2.0, -1.0]
    with pytest.raises(TypeError, match="__dlpack__"):
        interop.from_dlpack([1, 2, 3])
    with pytest.raises(TypeError, match="torch.Tensor"):
        interop.from_torch(np.ones(2))


@pytest.mark.skipif(dlia.gpu_available, reason="checks the error raised without a GPU")
def test_gpu_data_without_cupy_raises_clearly():
    class OnCuda:
        def __dlpack__(self, **kwargs):
            raise AssertionError("must not be consumed")

        def __dlpack_device__(self):
            return (2, 0)

    with pytest.raises(RuntimeError, match="CUDA.*CuPy"):
        interop.from_dlpack(OnCuda())


gpu = pytest.mark.skipif(not dlia.gpu_available, reason="needs CuPy and a CUDA GPU")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_cupy_round_trip_shares_memory(dtype):
    import cupy

    a = cupy.arange(12, dtype=dtype).reshape(3, 4)
    x = interop.from_dlpack(a)
    assert x.device.kind == "gpu" and x.shape == (3, 4) and x.dtype == np.dtype(dtype)
    a[1, 1] = 50
    assert int(x.numpy()[1, 1]) == 50
    assert x.__dlpack_device__()[0] == 2
    b = cupy.from_dlpack(x)
    b[0, 0] = -9
    assert int(a[0, 0].get()) == -9
    v = interop.from_dlpack(a.T)
    np.testing.assert_array_equal(v.numpy(), cupy.asnumpy(a).T)


@pytest.mark.gpu
@gpu
def test_torch_cuda_round_trip():
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    t = torch.arange(6, dtype=torch.float32, device="cuda").reshape(2, 3)
    x = interop.from_torch(t)
    assert x.device.kind == "gpu"
    t[0, 0] = 7
    assert x.numpy()[0, 0] == 7
    back = interop.to_torch(x)
    assert back.device.type == "cuda" and torch.equal(back, t)
