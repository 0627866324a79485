r"""Errors raised while a model executes, the same on every backend.

>>> error = out_of_range_error((2, 3), 4, 70000, 32000, "error")
>>> isinstance(error, IndexError) and isinstance(error, ValueError)
True
>>> print(str(error).replace(": ", ":\n"))
id 70000 at position (1, 1) is out of range:
the table has 32000 rows (vocab_size=32000), so ids must be in [0, 32000)
"""

from __future__ import annotations

__all__ = ["OutOfRangeError", "PeerLostError", "out_of_range_error", "scatter_error"]


class OutOfRangeError(IndexError, ValueError):
    """An id outside its table: an `IndexError`, and a `ValueError` as MAX raises, so either
    `except` catches it (numpy's `AxisError` is both in the same way)."""


class PeerLostError(RuntimeError):
    """A process of a job of several stopped answering during an exchange (it died, or never
    reached it within the job's timeout)."""


def out_of_range_error(
    shape: tuple[int, ...], flat_position: int, bad_id: int, size: int, policy: str, axis: int = 0
) -> OutOfRangeError:
    """The error naming the id, where it sits in ids of `shape`, and the size it must fit."""
    position = _unravel(flat_position, shape)
    if size == 0:
        where = "the table is empty" if axis == 0 else f"axis {axis} is empty"
        return OutOfRangeError(f"id {bad_id} at position {position} is out of range: {where}")
    valid = f"[-{size}, {size})" if policy == "wrap" else f"[0, {size})"
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
