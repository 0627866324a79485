"""`repeat_interleave(x, repeats, axis=None, out_dim=None)`: MAX's (and torch's) repetition of
each element along an axis, `repeats` times (an int), or as often as its entry of a `repeats`
value says: from TorchRec's `lengths`, the bag of each id.

>>> from ember.graph import Graph, TensorType
>>> types = [TensorType(DType.int64, ["batch"]), TensorType(DType.int64, ["n"])]
>>> with Graph("g", input_types=types) as g:
...     lengths, ids = g.inputs
...     batch = lengths.shape[0]
...     bags = range(0, batch, 1, batch, dtype=DType.int64, device=DeviceRef.CPU())
...     bag_of_each_id = repeat_interleave(bags, lengths, axis=0, out_dim=ids.shape[0])
>>> bag_of_each_id.shape
[Dim('n')]

With a `repeats` value (one count per element, or one count for all, as in torch), the
repeated axis' size is `out_dim` (a number, or dims the graph's inputs bind); at each
execution the repeats must sum to it and none be negative (0 drops an element, as in
torch), else one clear error.
"""

from __future__ import annotations

import numbers
from typing import Any

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..device import DeviceRef  # noqa: F401 - used by the doctest
from ..dim import Dim, StaticDim
from ..errors import GraphTypeError
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .axis import normalize_axis
from .constant import as_value
from .dim_binders import dim_binders
from .range import range  # noqa: F401 - used by the doctest
from .rearrange import flatten

__all__ = ["REPEAT_INTERLEAVE", "repeat_interleave", "repeats_error"]

REPEAT_INTERLEAVE = Op("repeat_interleave")


def repeat_interleave(
    x: Any, repeats: Any, axis: int | None = None, out_dim: Any = None
) -> TensorValue:
    """`x` with each element along `axis` repeated (`x` flattened first when `axis` is None).

    Raises:
        ValueError: an int `repeats` that is not positive; a `repeats` value of rank above 1,
            or not one per element of the axis; a `repeats` value without `out_dim`, or an
            `out_dim` whose symbols no graph input binds.
        GraphTypeError: a `repeats` value that is not integers.
        AxisError: `axis` is out of range for `x`.
    """
    value = as_value(x)
    if axis is None:
        value, axis = flatten(value), 0
    axis = normalize_axis("repeat_interleave", axis, value.rank)
    shape = list(value.shape)
    if isinstance(repeats, numbers.Integral) and not isinstance(repeats, bool):
        if repeats <= 0:
            raise ValueError(f"repeats_inteleave: repeat value must be positive, given {repeats=}")
        shape[axis] = shape[axis] * int(repeats)
        attrs = {"axis": axis, "repeats": int(repeats)}
        result = TensorType(value.dtype, shape, value.device)
        return current_graph().add_node(REPEAT_INTERLEAVE, [value], attrs, [result])[0]
    counts = as_value(repeats)
    if not counts.dtype.is_integral():
        raise GraphTypeError(f"repeat_interleave: repeats must be integers, got {counts.dtype!r}")
    if counts.rank > 1 or (
        counts.rank == 1
        and isinstance(counts.shape[0], StaticDim)
        and isinstance(shape[axis], StaticDim)
        and counts.shape[0] not in (shape[axis], StaticDim(1))
    ):
        raise ValueError(
            f"repeat_interleave: repeats of shape {counts.shape} are not one count (or one per "
            f"element) for axis {axis} of {value.shape}"
        )
    if out_dim is None:
        raise ValueError(
            "repeat_interleave: repeats given as a value need out_dim, the size the axis takes"
        )
    shape[axis] = Dim(out_dim)
    graph = current_graph()
    binders = dim_binders(
        "repeat_interleave", graph, shape[axis].symbols(), value.device, f"out_dim {shape[axis]}"
    )
    result = TensorType(value.dtype, shape, value.device)
    inputs = [value, counts.to(value.device), *binders]
    attrs = {"axis": axis, "out_dim": shape[axis]}
    return graph.add_node(REPEAT_INTERLEAVE, inputs, attrs, [result])[0]


def repeats_error(total: int, expected: int, count: int = -1, size: int = -1) -> ValueError:
    """The error for repeats that do not fit at execution (each backend's lowering raises it):
    `count` repeats for an axis of `size` where those differ, else a negative count (a total
    of -1) or a total other than `out_dim`."""
    if count != size:
        return ValueError(
            f"repeat_interleave: {count} repeats for an axis of {size} at this execution"
        )
    if total < 0:
        return ValueError(
            "repeat_interleave: a repeat count is negative, or the counts sum past their "
            "integer type"
        )
    return ValueError(
        f"repeat_interleave: the repeats sum to {total}, and out_dim is {expected} at this "
        "execution"
    )
