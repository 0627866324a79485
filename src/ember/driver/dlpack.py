"""DLPack export for every dtype a Tensor holds, bfloat16 and float8 included (numpy's own
exporter stops at the standard numpy types).

The capsule carries a `DLManagedTensor` whose manager keeps the array alive until the consumer
calls its deleter (or, unconsumed, until the capsule is collected).
"""

from __future__ import annotations

import ctypes

import numpy as np

from ember.dtype import DType

__all__ = ["DLPACK_CPU", "NARROW_FLOAT_CODES", "to_dlpack_capsule"]

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


class _Device(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _Tensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _Device),
        ("ndim", ctypes.c_int32),
        ("dtype", _DataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class _ManagedTensor(ctypes.Structure):
    pass


_Deleter = ctypes.CFUNCTYPE(None, ctypes.POINTER(_ManagedTensor))
_ManagedTensor._fields_ = [
    ("dl_tensor", _Tensor),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", _Deleter),
]

_live: dict[int, tuple] = {}
"""Exports not yet deleted: address of the DLManagedTensor -> what must outlive it."""


@_Deleter
def _delete(managed: ctypes.POINTER(_ManagedTensor)) -> None:
    _live.pop(ctypes.addressof(managed.contents), None)


_CapsuleDestructor = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
# Private prototypes: `ctypes.pythonapi.X` is one shared object whose argtypes others may change.
_capsule_new = ctypes.PYFUNCTYPE(
    ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p, _CapsuleDestructor
)(("PyCapsule_New", ctypes.pythonapi))
_capsule_is_valid = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)(
    ("PyCapsule_IsValid", ctypes.pythonapi)
)
_capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi)
)


@_CapsuleDestructor
def _destroy_capsule(capsule: int) -> None:
    """An unconsumed capsule still owns its tensor; a consumed one was renamed 'used_dltensor'."""
    if _capsule_is_valid(capsule, b"dltensor"):
        address = _capsule_pointer(capsule, b"dltensor")
        _live.pop(address, None)


def to_dlpack_capsule(array: np.ndarray, dtype: DType) -> object:
    """A 'dltensor' capsule viewing `array` (host memory, a narrow float type) without a copy."""
    code = NARROW_FLOAT_CODES[dtype]
    shape = (ctypes.c_int64 * max(array.ndim, 1))(*array.shape)
    itemsize = array.itemsize
    strides = (ctypes.c_int64 * max(array.ndim, 1))(*(s // itemsize for s in array.strides))
    managed = _ManagedTensor()
    managed.dl_tensor.data = array.ctypes.data
    managed.dl_tensor.device = _Device(DLPACK_CPU, 0)
    managed.dl_tensor.ndim = array.ndim
    managed.dl_tensor.dtype = _DataType(code, itemsize * 8, 1)
    managed.dl_tensor.shape = ctypes.cast(shape, ctypes.POINTER(ctypes.c_int64))
    managed.dl_tensor.strides = ctypes.cast(strides, ctypes.POINTER(ctypes.c_int64))
    managed.dl_tensor.byte_offset = 0
    managed.deleter = _delete
    address = ctypes.addressof(managed)
    _live[address] = (array, managed, shape, strides)
    return _capsule_new(address, b"dltensor", _destroy_capsule)
