"""Devices and Tensors: numpy and DLPack share memory, for every dtype."""

import ctypes
import gc

import ml_dtypes
import numpy as np
import pytest

from ember.driver import CPU, Accelerator, Tensor, accelerator_count, dlpack


def read_capsule(capsule):
    get = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
        ("PyCapsule_GetPointer", ctypes.pythonapi)
    )
    return dlpack._ManagedTensor.from_address(get(capsule, b"dltensor"))


def test_accelerator_is_a_clear_error_on_a_cpu_build():
    assert accelerator_count() == 0 and CPU(1).id == 1
    with pytest.raises(ValueError, match=r"found 0 accelerators.*CPU\(\)"):
        Accelerator()


def test_tensor_shares_memory_with_numpy():
    array = np.arange(6, dtype=np.int64).reshape(2, 3)
    tensor = Tensor.from_numpy(array)
    assert tensor.to_numpy() is array and np.shares_memory(np.from_dlpack(tensor), array)
    assert Tensor.from_dlpack(array).to_numpy().ctypes.data == array.ctypes.data
    with pytest.raises(TypeError, match="complex64 has no DType"):
        Tensor(np.zeros(2, np.complex64))


@pytest.mark.parametrize(
    ("dtype", "code"),
    [(ml_dtypes.bfloat16, 4), (ml_dtypes.float8_e4m3fn, 10), (ml_dtypes.float8_e5m2, 12)],
)
def test_narrow_floats_export_their_dlpack_type(dtype, code):
    array = np.arange(12, dtype=np.float32).astype(dtype).reshape(3, 4)[:, ::2]
    capsule = Tensor.from_numpy(array).__dlpack__()
    managed = read_capsule(capsule)
    t = managed.dl_tensor
    assert (t.dtype.code, t.dtype.bits, t.dtype.lanes) == (code, 8 * array.itemsize, 1)
    assert t.data == array.ctypes.data and t.ndim == 2
    assert [t.shape[i] for i in range(2)] == [3, 2] and [t.strides[i] for i in range(2)] == [4, 2]
    assert len(dlpack._live) == 1
    del capsule, managed, t
    gc.collect()
    assert not dlpack._live  # an unconsumed capsule releases the array


def test_torch_reads_bfloat16_without_a_copy():
    torch = pytest.importorskip("torch")
    array = np.linspace(-2, 2, 8, dtype=np.float32).astype(ml_dtypes.bfloat16)
    shared = torch.from_dlpack(Tensor.from_numpy(array))
    assert shared.dtype == torch.bfloat16 and shared.data_ptr() == array.ctypes.data
    assert torch.equal(shared.float(), torch.from_numpy(array.astype(np.float32)))
