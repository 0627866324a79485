"""DLPack exchange for every DType, the narrow floats (bfloat16, float8...) included, which
numpy's own exporter and importer lack.

Both ways go through numpy with the same bytes typed as unsigned integers, and the capsule's
type code rewritten: numpy's capsules keep the memory alive and free it whether the consumer
takes the capsule, drops it, or fails on it.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

import numpy as np

from ember.dtype import DType

__all__ = ["DLPACK_CPU", "NARROW_FLOAT_CODES", "from_dlpack", "host_array", "to_dlpack_capsule"]

DLPACK_CPU = 1

# DLDataTypeCode values from dlpack.h (v1.1), for the types numpy's exporter cannot name
NARROW_FLOAT_CODES = {
    DType.bfloat16: 4,
    DType.float8_e4m3fn: 10,
    DType.float8_e4m3fnuz: 11,
    DType.float8_e5m2: 12,
    DType.float8_e5m2fnuz: 13,
    DType.float8_e8m0fnu: 14,
    DType.float6_e2m3fn: 15,
    DType.float6_e3m2fn: 16,
    DType.float4_e2m1fn: 17,
}


class DataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class ManagedTensor(ctypes.Structure):
    """The head of dlpack.h's `DLManagedTensor`, up to the fields read or written here."""

    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device_type", ctypes.c_int32),
        ("device_id", ctypes.c_int32),
        ("ndim", ctypes.c_int32),
        ("dtype", DataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
    ]


class VersionedHead(ctypes.Structure):
    """The head of dlpack.h's `DLManagedTensorVersioned` (DLPack 1.x): its tensor follows the
    flags, which say whether the memory may be written."""

    _fields_ = [
        ("major", ctypes.c_uint32),
        ("minor", ctypes.c_uint32),
        ("manager_ctx", ctypes.c_void_p),
        ("deleter", ctypes.c_void_p),
        ("flags", ctypes.c_uint64),
        ("tensor", ManagedTensor),
    ]


# Private prototypes: `ctypes.pythonapi.X` is one shared object whose argtypes others may set.
_capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi)
)
_capsule_is = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_IsValid", ctypes.pythonapi)
)


def managed_tensor(capsule: object) -> ManagedTensor:
    """The tensor description inside an unconsumed 'dltensor' or 'dltensor_versioned'
    capsule."""
    if _capsule_is(capsule, b"dltensor_versioned"):
        head = VersionedHead.from_address(_capsule_pointer(capsule, b"dltensor_versioned"))
        return head.tensor
    return ManagedTensor.from_address(_capsule_pointer(capsule, b"dltensor"))


def to_dlpack_capsule(array: np.ndarray, dtype: DType, **kwargs: object) -> object:
    """A capsule viewing `array` (host memory, a narrow float type) without a copy; versioned
    (with its read-only flag) when the consumer asks with `max_version`."""
    capsule = array.view(f"u{array.itemsize}").__dlpack__(**kwargs)
    managed_tensor(capsule).dtype.code = NARROW_FLOAT_CODES[dtype]
    return capsule


_UINT = 1
_FROM_CODE = {code: dtype for dtype, code in NARROW_FLOAT_CODES.items()}


def from_dlpack(producer: object) -> np.ndarray:
    """A numpy view of any host-memory DLPack producer (torch, jax...), narrow floats included.

    Raises:
        TypeError: `producer` speaks no DLPack, or holds a type numpy cannot view.
    """
    if type(producer) is np.ndarray:
        return producer  # numpy's own export refuses bfloat16 and the narrow floats
    if not hasattr(producer, "__dlpack__"):
        raise TypeError(f"{type(producer).__name__} is not a DLPack producer")
    try:
        return np.from_dlpack(producer)
    except (BufferError, RuntimeError, TypeError, ValueError) as exc:
        first_error = exc
    try:
        capsule = _capsule_from(producer)
        managed = managed_tensor(capsule)
    except (BufferError, RuntimeError, TypeError, ValueError):
        raise TypeError(f"cannot read {type(producer).__name__}: {first_error}") from first_error
    dtype = _FROM_CODE.get(managed.dtype.code)
    if dtype is None or managed.dtype.lanes != 1:
        raise TypeError(f"cannot read {type(producer).__name__}: {first_error}") from first_error
    managed.dtype.code = _UINT
    return np.from_dlpack(_Capsule(capsule)).view(dtype.to_numpy())


def host_array(producer: object) -> np.ndarray | None:
    """A host-memory DLPack producer's values as a writeable numpy array, read the cheapest way
    known for its type, for callers paying per call (a one-token lookup's ids): a view, or a
    copy where the producer exports read-only memory (jax). None where there is none (no
    DLPack, another device, a dtype numpy lacks): the caller then reads it the general way,
    which says what is wrong.

    Cheapest: torch's own `Tensor.numpy`, one C call (~0.7 µs), where DLPack goes through torch's
    Python `__dlpack__` (~2-4 µs); any other producer: `np.from_dlpack`.
    """
    try:
        return _READERS[type(producer)](producer)
    except KeyError:
        if type(producer) in _READERS:  # raised by the reader
            return None
        _READERS[type(producer)] = _reader_of(type(producer))
        return host_array(producer)
    except (BufferError, RuntimeError, TypeError, ValueError):
        return None


_READERS: dict[type, Callable[[object], np.ndarray | None]] = {}
"""`host_array`'s reader per producer type, found at its first instance."""


def _reader_of(kind: type) -> Callable[[object], np.ndarray | None]:
    torch = sys.modules.get("torch")  # imported wherever a torch tensor exists
    if torch is not None and kind is torch.Tensor:  # not subclasses: they may override numpy()
        return torch.Tensor.numpy  # writeable; raises for another device, autograd, bfloat16
    return _writeable_from_dlpack if hasattr(kind, "__dlpack__") else _no_array


def _no_array(value: object) -> None:
    return None


def _writeable_from_dlpack(producer: object) -> np.ndarray:
    array = np.from_dlpack(producer)
    return array if array.flags.writeable else array.copy()


def _capsule_from(producer: object) -> object:
    """A versioned capsule where the producer speaks DLPack 1.x (it says whether the memory is
    writeable: an unversioned one reads back read-only), else an unversioned one."""
    try:
        return producer.__dlpack__(max_version=(1, 0))
    except TypeError:  # a producer of DLPack 0.x takes no max_version
        return producer.__dlpack__()


class _Capsule:
    """Hands numpy a capsule already taken from its producer."""

    def __init__(self, capsule: object) -> None:
        self.capsule = capsule

    def __dlpack__(self, **kwargs: object) -> object:
        return self.capsule

    def __dlpack_device__(self) -> tuple[int, int]:
        return (DLPACK_CPU, 0)
