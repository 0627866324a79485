r"""Errors raised while a model executes, the same on every backend.

>>> error = out_of_range_error((2, 3), 4, 70000, 32000, "error")
>>> isinstance(error, IndexError) and isinstance(error, ValueError)
True
>>> print(str(error).replace(": ", ":\n"))
id 70000 at position (1, 1) is out of range:
the table has 32000 rows (vocab_size=32000), so ids must be in [0, 32000)
>>> out_of_range_ids(np.array([[3, 70000]], np.uint64), 32000, "zero")
array([[False,  True]])
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "InputError",
    "OutOfRangeError",
    "PeerLostError",
    "out_of_range_error",
    "out_of_range_ids",
    "scatter_error",
]


class OutOfRangeError(IndexError, ValueError):
    """An id outside its table: an `IndexError`, and a `ValueError` as MAX raises, so either
    `except` catches it (numpy's `AxisError` is both in the same way)."""


class InputError(TypeError, ValueError):
    """An input `execute` cannot take (their number, or a dtype): a `TypeError`, and a
    `ValueError` as MAX raises, so either `except` catches it."""


class PeerLostError(RuntimeError):
    """A process of a job of several stopped answering during an exchange (it died, or never
    reached it within the job's timeout)."""


def out_of_range_ids(
    ids: np.ndarray, size: int, out_of_range: str, axis: int = 0
) -> np.ndarray | None:
    """Where `ids` lie outside `[0, size)` (`[-size, size)` when `out_of_range` is "wrap"), or
    None where all lie inside. Compared in the ids' own type: a cast to int64 would wrap huge
    uint64 ids into range.

    Raises:
        OutOfRangeError: naming the first such id, when `out_of_range` is "error" or "wrap".
    """
    low = -size if out_of_range == "wrap" else 0
    if ids.size == 0 or (ids.min() >= low and ids.max() < size):  # the common case, cheaply
        return None
    outside = ids >= size if ids.dtype.kind == "u" else (ids < low) | (ids >= size)
    if out_of_range in ("error", "wrap"):
        at = int(outside.argmax())
        bad_id = ids.reshape(-1)[at].item()
        raise out_of_range_error(ids.shape, at, bad_id, size, out_of_range, axis)
    return outside


def out_of_range_error(
    shape: tuple[int, ...],
    flat_position: int,
    bad_id: int,
    size: int,
    out_of_range: str,
    axis: int = 0,
) -> OutOfRangeError:
    """The error naming the id, where it sits in ids of `shape`, and the size it must fit."""
    position = _unravel(flat_position, shape)
    if size == 0:
        where = "the table is empty" if axis == 0 else f"axis {axis} is empty"
        return OutOfRangeError(f"id {bad_id} at position {position} is out of range: {where}")
    valid = f"[-{size}, {size})" if out_of_range == "wrap" else f"[0, {size})"
    rows = "row" if size == 1 else "rows"
    extent = (
        f"the table has {size} {rows} (vocab_size={size})"
        if axis == 0
        else f"axis {axis} has size {size}"
    )
    return OutOfRangeError(
        f"id {bad_id} at position {position} is out of range: {extent}, so ids must be in {valid}"
    )


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    position = []
    for extent in reversed(shape):
        flat, index = divmod(flat, extent) if extent else (flat, 0)
        position.append(index)
    return tuple(reversed(position))


def scatter_error(shape: tuple[int, ...], devices: int) -> str:
    """Why ids of `shape` cannot be scattered over `devices`."""
    first = shape[0] if shape else "no axis"
    return (
        f"reduce='scatter' splits the ids' first axis over {devices} devices, but ids of "
        f"shape {tuple(shape)} have {first} there; pass a multiple of {devices}"
    )
