"""Ids tested against an interval in their own type, on the host: `first_outside` finds the
first bad id, `within` marks the good ones.

A cast to int64 would wrap huge uint64 ids into range, and a bound compared as a Python int
can lie outside the ids' type; here the bounds are clipped to the type instead.

>>> ids = np.array([3, 2**64 - 1, 7], np.uint64)
>>> within(ids, -5, 4).tolist(), first_outside(ids, -5, 4)
([True, False, False], 1)
>>> first_outside(np.array([0, 1], np.int8), 0, 300)
-1
"""

from __future__ import annotations

import numpy as np

__all__ = ["first_outside", "within"]


def within(ids: np.ndarray, low: int, high: int) -> np.ndarray:
    """Which of ``ids`` lie in ``[low, high]`` (bools, of ``ids``' shape)."""
    info = np.iinfo(ids.dtype)
    low, high = max(low, info.min), min(high, info.max)
    if low > high:
        return np.zeros(ids.shape, bool)
    kind = ids.dtype.type
    return (ids >= kind(low)) & (ids <= kind(high))


def first_outside(ids: np.ndarray, low: int, high: int) -> int:
    """The flat position of the first of ``ids`` outside ``[low, high]``, or -1 if none is."""
    outside = ~within(ids, low, high).reshape(-1)
    return int(outside.argmax()) if outside.any() else -1
