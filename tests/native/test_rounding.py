"""`rounded`: float64 to bfloat16 and float8 rounded once, to the nearest and ties to even,
against the nearest of every value of the dtype (found by search, not by conversion)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from ember.engine.backends.native.rounding import rounded


def _positive_values(dtype) -> np.ndarray:
    """Every finite value of `dtype` above 0, ascending, as float64 (from every bit pattern)."""
    width = np.dtype(dtype).itemsize
    every = np.arange(1 << (8 * width), dtype=np.uint32).astype(f"u{width}").view(dtype)
    with np.errstate(invalid="ignore"):
        wide = every.astype(np.float64)
    return np.unique(wide[np.isfinite(wide) & (wide > 0)])


def _nearest(values: np.ndarray, dtype) -> np.ndarray:
    """Each value's nearest of every finite `dtype` value, ties to the even bit pattern, or
    ±inf past the largest by half a step (IEEE's overflow rule)."""
    grid = np.concatenate([[0.0], _positive_values(dtype)])
    grid = np.concatenate([-grid[::-1], grid[1:]])
    top = grid[-1] + (grid[-1] - grid[-2]) / 2
    at = np.clip(np.searchsorted(grid, values), 1, len(grid) - 1)
    low, high = grid[at - 1], grid[at]
    pick_high = (high - values < values - low) | (
        (high - values == values - low)
        & (high.astype(dtype).view(f"u{np.dtype(dtype).itemsize}") % 2 == 0)
    )
    out = np.where(pick_high, high, low)
    out = np.where(np.abs(values) >= top, np.copysign(np.inf, values), out)
    out = np.where(out == 0, np.copysign(0.0, values), out)  # a zero keeps the value's sign
    return out.astype(dtype)


@pytest.mark.parametrize(
    "dtype", [ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2]
)
def test_rounded_once_to_the_nearest(dtype):
    rng = np.random.default_rng(0)
    finite = _positive_values(dtype)
    mids = (finite[:-1] + np.diff(finite) / 2)[:: max(1, len(finite) // 2000)]
    values = np.concatenate([
        mids, mids * (1 + 2**-40), mids * (1 - 2**-40), -mids * (1 + 2**-30),  # about ties
        rng.standard_normal(20000) * 10, rng.standard_normal(1000) * 1e-3,
    ])  # fmt: skip
    if np.isfinite(float(ml_dtypes.finfo(dtype).max)) and dtype is not ml_dtypes.float8_e4m3fn:
        values = np.concatenate([values, [float(ml_dtypes.finfo(dtype).max) * 1.5, 1e300]])
    got = rounded(values, dtype)
    want = _nearest(values, dtype)
    assert got.view(f"u{got.itemsize}").tolist() == want.view(f"u{want.itemsize}").tolist()


def test_direct_dtypes_and_specials():
    values = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-50, -1e-50, 1e300])
    got = rounded(values, ml_dtypes.bfloat16).astype(np.float64)
    assert np.isnan(got[0]) and got[1:4].tolist() == [np.inf, -np.inf, 0.0]
    assert np.signbit(got[3]) and got[4] == 0 and np.signbit(got[5]) and got[6] == np.inf
    assert rounded(values, np.float32).dtype == np.float32
