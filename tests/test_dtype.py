import ml_dtypes
import numpy as np
import pytest

from ember.dtype import DType

MAX_ORDER = [
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "bfloat16", "float4_e2m1fn", "float6_e2m3fn",
    "float6_e3m2fn", "float8_e8m0fnu", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2",
    "float8_e5m2fnuz",
]  # fmt: skip


def test_members_in_max_order():
    assert [d.value for d in DType] == MAX_ORDER


def test_str_and_repr():
    assert str(DType.float32) == "DType.float32"
    assert repr(DType.float32) == "float32"


@pytest.mark.parametrize(
    ("dtype", "size"),
    [(DType.bool, 1), (DType.int64, 8), (DType.bfloat16, 2), (DType.float8_e4m3fn, 1)],
)
def test_size_in_bytes(dtype, size):
    assert dtype.size_in_bytes == size


def test_kinds():
    assert DType.bfloat16.is_float() and not DType.bfloat16.is_integral()
    assert DType.uint16.is_integral() and not DType.uint16.is_float()
    assert not DType.bool.is_integral() and not DType.bool.is_float()


@pytest.mark.parametrize("dtype", list(DType))
def test_numpy_round_trip(dtype):
    assert DType.from_numpy(dtype.to_numpy()) is dtype


def test_narrow_types_come_from_ml_dtypes():
    assert DType.bfloat16.to_numpy() == np.dtype(ml_dtypes.bfloat16)
    assert DType.from_numpy(ml_dtypes.float8_e5m2) is DType.float8_e5m2


def test_unsupported_numpy_dtype_is_a_clear_error():
    with pytest.raises(TypeError, match="complex64 has no DType"):
        DType.from_numpy(np.complex64)
