"""`rounded(values, dtype)`: float64 values rounded once, to the nearest (ties to even), to a
float dtype. numpy rounds to float32 and float16 directly, but ml_dtypes takes float64 to
bfloat16 and float8 through float32, rounding twice: a value just past a bfloat16 midpoint
can land on it in float32 and then go the wrong way. Here float32 is reached by rounding to
odd, which keeps what the second rounding needs to round as once.

>>> import ml_dtypes
>>> x = np.array([-62.1250003])  # past the midpoint of -62.0 and -62.25
>>> float(rounded(x, ml_dtypes.bfloat16)[0]), float(x.astype(ml_dtypes.bfloat16)[0])
(-62.25, -62.0)
"""

from __future__ import annotations

import numpy as np

__all__ = ["rounded"]

_DIRECT = (np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.float16))


def rounded(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`values` (float64) in `dtype`, rounded once; inf, NaN and overflow as IEEE gives them,
    without numpy's warnings."""
    values = np.asarray(values, np.float64)
    with np.errstate(all="ignore"):
        if np.dtype(dtype) in _DIRECT:
            return values.astype(dtype)
        return _to_odd_float32(values).astype(dtype)


def _to_odd_float32(values: np.ndarray) -> np.ndarray:
    """float32 by rounding to odd: toward zero, then the last bit set where inexact."""
    near = values.astype(np.float32)
    back = near.astype(np.float64)
    bits = near.view(np.uint32)
    bits = bits - (np.abs(back) > np.abs(values)).astype(np.uint32)  # rounded away: step back
    inexact = (back != values) & ~np.isnan(values)
    return (bits | inexact.astype(np.uint32)).view(np.float32)
