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

import ml_dtypes

from ember.dtype import DType

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
    raise TypeError(
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
    if narrow is DType.bool:
        return True
    if wide.is_integral():  # signed or unsigned from unsigned, or signed from signed
        return narrow.is_signed_integral() == wide.is_signed_integral() or (
            _bits(narrow) < _bits(wide)
        )
    wide_info = _finfo(wide)
    if wide_info is None:
        return False
    if narrow.is_integral():  # a float holds integers up to 2 ** (mantissa bits + 1)
        magnitude_bits = _bits(narrow) - narrow.is_signed_integral()
        return magnitude_bits <= wide_info.nmant + 1 and float(wide_info.max) >= 2.0**magnitude_bits
    narrow_info = _finfo(narrow)
    return (
        narrow_info is not None
        and narrow_info.nmant <= wide_info.nmant
        and float(narrow_info.max) <= float(wide_info.max)
        and float(narrow_info.smallest_subnormal) >= float(wide_info.smallest_subnormal)
        and (float(narrow_info.min) >= 0 or float(wide_info.min) < 0)
    )


def _finfo(dtype: DType) -> ml_dtypes.finfo | None:
    try:
        return ml_dtypes.finfo(dtype.to_numpy())
    except (TypeError, ValueError):
        return None
