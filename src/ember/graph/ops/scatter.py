"""MAX's scatters: `scatter(input, updates, indices, axis)` writes `updates` into a copy of
`input` at `indices` along one axis (ONNX's ScatterElements), `scatter_nd` writes slices at
index vectors; the `_add`, `_mul`, `_max` and `_min` forms combine instead of replacing.

>>> import numpy as np
>>> from ember.graph import Graph, TensorType
>>> types = [TensorType(DType.float32, [4, 3]), TensorType(DType.int64, [2, 1])]
>>> with Graph("g", input_types=types) as g:
...     table, rows = g.inputs
...     written = scatter_nd(table, np.zeros((2, 3), np.float32), rows)  # two rows replaced
>>> written.shape
[Dim(4), Dim(3)]

The same on every backend: negative indices count from the end, as `gather`'s do, and one
outside its axis is an `OutOfRangeError`. Where indices repeat, a plain scatter keeps the
update that comes last in the updates' order; `_max` and `_min` are exact (NaN wins, as in
numpy); `_add` and `_mul` of floats combine in each backend's order (natively the updates'
order), within the usual bound of that many float operations.
"""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..dim import StaticDim
from ..errors import GraphTypeError
from ..graph import current_graph
from ..op import Op
from ..value import TensorValue
from .axis import normalize_axis
from .constant import as_value

__all__ = [
    "SCATTER",
    "SCATTER_ND",
    "scatter",
    "scatter_add",
    "scatter_max",
    "scatter_min",
    "scatter_mul",
    "scatter_nd",
    "scatter_nd_add",
    "scatter_nd_max",
    "scatter_nd_min",
    "scatter_nd_mul",
]

SCATTER = Op("scatter")
SCATTER_ND = Op("scatter_nd")


def scatter(input: Any, updates: Any, indices: Any, axis: int = -1) -> TensorValue:
    """A copy of `input` with `updates[p]` written at `p` with its `axis` component replaced by
    `indices[p]` (`indices` of `updates`' shape; the other components within `input`'s dims).

    Raises:
        ValueError: devices that differ, ranks that differ, indices of another shape than the
            updates, or an updates dim past `input`'s where both are static.
        GraphTypeError: dtypes that differ (MAX's `ValueError`), or indices that are not int32
            or int64.
        AxisError: `axis` is out of range.
    """
    return _scatter(input, updates, indices, axis, None)


def scatter_add(input: Any, updates: Any, indices: Any, axis: int = -1) -> TensorValue:
    """`scatter`, each update added to the value it lands on."""
    return _scatter(input, updates, indices, axis, "add")


def scatter_mul(input: Any, updates: Any, indices: Any, axis: int = -1) -> TensorValue:
    """`scatter`, the value each update lands on multiplied by it."""
    return _scatter(input, updates, indices, axis, "mul")


def scatter_max(input: Any, updates: Any, indices: Any, axis: int = -1) -> TensorValue:
    """`scatter`, keeping the larger of each update and the value it lands on."""
    return _scatter(input, updates, indices, axis, "max")


def scatter_min(input: Any, updates: Any, indices: Any, axis: int = -1) -> TensorValue:
    """`scatter`, keeping the smaller of each update and the value it lands on."""
    return _scatter(input, updates, indices, axis, "min")


def scatter_nd(input: Any, updates: Any, indices: Any) -> TensorValue:
    """A copy of `input` with `updates[i]` written at `input[indices[i]]`: `indices` of shape
    `(..., k)` hold index vectors into `input`'s first `k` dims, and `updates` are of shape
    `indices.shape[:-1] + input.shape[k:]` (rows of a table for `k = 1`).

    Raises:
        ValueError: devices that differ, index vectors longer than `input`'s rank, or updates
            of another shape.
        GraphTypeError: dtypes that differ (MAX's `ValueError`), or indices that are not int32
            or int64.
    """
    return _scatter_nd(input, updates, indices, None)


def scatter_nd_add(input: Any, updates: Any, indices: Any) -> TensorValue:
    """`scatter_nd`, each update added to the slice it lands on."""
    return _scatter_nd(input, updates, indices, "add")


def scatter_nd_mul(input: Any, updates: Any, indices: Any) -> TensorValue:
    """`scatter_nd`, the slice each update lands on multiplied by it."""
    return _scatter_nd(input, updates, indices, "mul")


def scatter_nd_max(input: Any, updates: Any, indices: Any) -> TensorValue:
    """`scatter_nd`, keeping the larger of each update and the value it lands on."""
    return _scatter_nd(input, updates, indices, "max")


def scatter_nd_min(input: Any, updates: Any, indices: Any) -> TensorValue:
    """`scatter_nd`, keeping the smaller of each update and the value it lands on."""
    return _scatter_nd(input, updates, indices, "min")


def _operands(
    op: str, input: Any, updates: Any, indices: Any, reduction: Any
) -> tuple[TensorValue, ...]:
    x, u, i = as_value(input), as_value(updates), as_value(indices)
    if x.dtype != u.dtype:
        raise GraphTypeError(
            f"The input dtype '{x.dtype}' and updates dtype '{u.dtype}' must match."
        )
    if i.dtype not in (DType.int32, DType.int64):
        raise GraphTypeError(
            f"Invalid indices dtype: '{i.dtype}'. Indices must be of type int32 or int64."
        )
    if not x.device == u.device == i.device:
        raise ValueError(
            f"{op}: input, updates and indices must be on the same device; they live on "
            f"{x.device}, {u.device} and {i.device}"
        )
    if x.dtype is DType.bool and reduction in ("add", "mul"):
        raise GraphTypeError(f"{op}: arithmetic needs numbers, got bool values; cast them first")
    return x, u, i


def _scatter(input: Any, updates: Any, indices: Any, axis: int, reduction: Any) -> TensorValue:
    op = "scatter" if reduction is None else f"scatter_{reduction}"
    x, u, i = _operands(op, input, updates, indices, reduction)
    axis = normalize_axis(op, axis, x.rank)
    if u.rank != x.rank or i.shape != u.shape:
        raise ValueError(
            f"{op}: updates {u.shape} and indices {i.shape} must share one shape, of the "
            f"input's rank ({x.shape})"
        )
    for d, (size, limit) in enumerate(zip(u.shape, x.shape, strict=True)):
        static = isinstance(size, StaticDim) and isinstance(limit, StaticDim)
        if d != axis and static and int(size) > int(limit):
            raise ValueError(f"{op}: updates {u.shape} reach past the input {x.shape} in dim {d}")
    attrs = {"axis": axis, "reduction": reduction}
    return current_graph().add_node(SCATTER, [x, u, i], attrs, [x.type])[0]


def _scatter_nd(input: Any, updates: Any, indices: Any, reduction: Any) -> TensorValue:
    op = "scatter_nd" if reduction is None else f"scatter_nd_{reduction}"
    x, u, i = _operands(op, input, updates, indices, reduction)
    depth = i.shape[-1] if i.rank else None
    if not isinstance(depth, StaticDim) or not 1 <= int(depth) <= x.rank:
        raise ValueError(
            f"{op}: indices {i.shape} must end in a static index length from 1 to the "
            f"input's rank ({x.shape})"
        )
    expected = [*i.shape[:-1], *x.shape[int(depth) :]]
    if list(u.shape) != expected:
        raise ValueError(f"{op}: updates must be of shape {expected}, got {u.shape}")
    attrs = {"reduction": reduction}
    return current_graph().add_node(SCATTER_ND, [x, u, i], attrs, [x.type])[0]
