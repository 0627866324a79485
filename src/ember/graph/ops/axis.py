"""Normalizing axis arguments, with numpy's AxisError (both a ValueError and an IndexError)."""

from __future__ import annotations

import numbers

from numpy.exceptions import AxisError

__all__ = ["AxisError", "normalize_axis"]


def normalize_axis(op: str, axis: int, rank: int) -> int:
    """`axis` as a non-negative int below `rank`; negative axes count from the end.

    Raises:
        AxisError: `axis` is not an int in `[-rank, rank)`.
    """
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise AxisError(f"{op}: axis must be an int, got {axis!r}")
    if not -rank <= axis < rank:
        raise AxisError(
            f"{op}: axis {axis} is out of range for a value of rank {rank} "
            f"(expected {-rank} <= axis < {rank})"
        )
    return int(axis) % rank
