"""The one bound both readers put on a tensor's shape: numpy refuses an array, even an empty
one, whose byte count (counting a zero dim as 1) passes int64."""

from __future__ import annotations

from math import prod

__all__ = ["I64_MAX", "overflows_numpy"]

I64_MAX = (1 << 63) - 1


def overflows_numpy(shape: tuple[int, ...] | list[int], itemsize: int) -> bool:
    """Whether numpy would refuse an array of `shape` and `itemsize` (dims already known >= 0)."""
    return prod(d or 1 for d in shape) * itemsize > I64_MAX
