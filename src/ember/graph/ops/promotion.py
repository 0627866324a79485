"""MAX's dtype promotion of two graph values: their result takes one of the two dtypes, the
one at least as high in kind (bool < unsigned < signed < float) and at least as wide, and only
when it holds every value of the other exactly (int64 with bool, float32 with bfloat16 or
int16). Anything else (int32 with float32, uint8 with int8, float16 with bfloat16) is a
TypeError: cast one operand explicitly.

>>> promoted_dtype("add", DType.int64, DType.bool)
int64
>>> promoted_dtype("matmul", DType.bfloat16, DType.float32)
float32
"""

from __future__ import annotations

import functools

import ml_dtypes
import numpy as np

from ember.dtype import DType

from ..errors import GraphTypeError

__all__ = ["promoted_dtype"]


def promoted_dtype(op: str, a: DType, b: DType) -> DType:
    """The dtype both operands of `op` take.

    Raises:
        TypeError: neither dtype holds every value of the other.
    """
    if a is b:
        return a
    for wide, narrow in ((a, b), (b, a)):
        higher = _kind(wide) >= _kind(narrow) and _bits(wide) >= _bits(narrow)
        if higher and _holds(wide, narrow):
            return wide
    raise GraphTypeError(
        f"{op}: operands have dtypes {a!r} and {b!r}, and neither holds every value of the "
        "other; cast one with .cast() first"
    )


def _kind(dtype: DType) -> int:
    if dtype is DType.bool:
        return 0
    if dtype.is_integral():
        return 2 if dtype.is_signed_integral() else 1
    return 3


def _bits(dtype: DType) -> int:
    return 8 * dtype.size_in_bytes


def _holds(wide: DType, narrow: DType) -> bool:
    """Whether every value of `narrow` is exactly a value of `wide` (which is at least as high
    in kind and as wide)."""
    if wide.is_integral():  # signed or unsigned from bool or unsigned, or signed from signed
        return narrow is DType.bool or (
            narrow.is_signed_integral() == wide.is_signed_integral() or _bits(narrow) < _bits(wide)
        )
    if _bits(narrow) <= 16:  # bool, small integers, every narrow float: each value tried
        return _every_value_survives(narrow, wide)
    wide_info = _finfo(wide)
    if wide_info is None:
        return False
    if narrow.is_integral():  # a float holds integers up to 2 ** (mantissa bits + 1)
        magnitude_bits = _bits(narrow) - narrow.is_signed_integral()
        return magnitude_bits <= wide_info.nmant + 1 and float(wide_info.max) >= 2.0**magnitude_bits
    return narrow is DType.float32 and wide is DType.float64


@functools.cache
def _every_value_survives(narrow: DType, wide: DType) -> bool:
    """Every bit pattern of `narrow` cast to `wide` and back: the same value (NaN stays NaN,
    infinities and the sign of zero stay)."""
    try:
        narrow_type, wide_type = narrow.to_numpy(), wide.to_numpy()
    except TypeError:  # no numpy type to try it with: refused
        return False
    if narrow is DType.bool:
        values = np.array([False, True])
    else:
        bits = np.arange(1 << _bits(narrow), dtype=np.uint64).astype(f"u{narrow_type.itemsize}")
        values = bits.view(narrow_type)
    with np.errstate(invalid="ignore", over="ignore"):
        back = values.astype(wide_type).astype(narrow_type)
        if not narrow.is_float():
            return bool((back == values).all())
        a, b = values.astype(np.float64), back.astype(np.float64)
    same = (a == b) & (np.signbit(a) == np.signbit(b))
    return bool((same | (np.isnan(a) & np.isnan(b))).all())


def _finfo(dtype: DType) -> ml_dtypes.finfo | None:
    try:
        return ml_dtypes.finfo(dtype.to_numpy())
    except (TypeError, ValueError):
        return None
