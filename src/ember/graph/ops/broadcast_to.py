"""`broadcast_to(x, shape)`: `x` repeated along new leading axes and axes of size 1 (MAX's
`ops.broadcast_to`, numpy's rule).

>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.float32, ["batch", 1, 8])]) as g:
...     y = broadcast_to(g.inputs[0], ["batch", 4, 8])
>>> y.shape
[Dim('batch'), Dim(4), Dim(8)]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..dim import Dim, DimLike, StaticDim
from ..graph import current_graph
from ..op import Op
from ..shape import Shape
from ..type import TensorType
from ..value import TensorValue
from .constant import as_value
from .dim_binders import dim_binders
from .transfer import transfer_to

__all__ = ["BROADCAST_TO", "broadcast_to", "check_broadcast", "not_broadcastable", "wrong_shape"]

BROADCAST_TO = Op("broadcast_to")


def broadcast_to(
    x: Any, shape: TensorValue | Iterable[DimLike], out_dims: Iterable[DimLike] | None = None
) -> TensorValue:
    """Each dim of `x`, aligned from the end, must equal the target's or be 1; where one of the
    two is static and the other symbolic, that is checked at each execution. A symbolic target
    dim must be bound by a graph input on `x`'s device. As in MAX, the shape may be a graph
    value (rank 1, integers) when `out_dims` gives the result's dims; its values must equal
    them at each execution, else the execution raises.

    Raises:
        ValueError: a dim that does not broadcast, a target of lower rank, a graph-value
            shape without `out_dims` or of the wrong rank, or a target symbol no input binds.
        TypeError: a graph-value shape that is not of integers.
    """
    value = as_value(x)
    inputs = [value]
    if isinstance(shape, TensorValue):
        if out_dims is None:
            raise ValueError(
                f"broadcast_to: a shape given as a graph value ({shape.type}) needs out_dims, "
                "the dims of the result"
            )
        if not shape.dtype.is_integral():
            raise TypeError(f"broadcast_to: a shape value holds integers, got {shape.dtype!r}")
        target = Shape(out_dims)
        if shape.rank != 1 or shape.shape[0] != StaticDim(len(target)):
            raise ValueError(
                f"broadcast_to: the shape value {shape.type} must be rank 1 with one size for "
                f"each of out_dims {target}"
            )
        inputs.append(transfer_to(shape, value.device))
    else:
        target = Shape(shape)
    if len(target) < value.rank:
        raise ValueError(f"broadcast_to: {value.shape} has more dims than the target {target}")
    for axis, dim in enumerate(value.shape):
        at = len(target) - value.rank + axis
        to = target[at]
        if dim != to and dim != StaticDim(1) and not _sizes_decide(dim, to):
            raise not_broadcastable(axis, dim, at, to)
    graph = current_graph()
    new = target.symbols() - value.shape.symbols()
    inputs += dim_binders("broadcast_to", graph, new, value.device, f"shape {target}")
    result = TensorType(value.dtype, target, value.device)
    attrs = {"shape": target, "checked": isinstance(shape, TensorValue)}
    return graph.add_node(BROADCAST_TO, inputs, attrs, [result])[0]


def wrong_shape(sizes: list[int], dims: list[int]) -> ValueError:
    if not dims:  # too many to carry back from a device
        return ValueError("broadcast_to: the shape value differs from out_dims at this execution")
    return ValueError(
        f"broadcast_to: the shape value is {sizes} at this execution, but out_dims are {dims}"
    )


def _sizes_decide(dim: Dim, to: Dim) -> bool:
    """Whether only the sizes of an execution can say if `dim` broadcasts to `to`: one is
    static, the other not (two different symbolic dims never match, as in MAX)."""
    return isinstance(dim, StaticDim) != isinstance(to, StaticDim)


def not_broadcastable(axis: int, dim: Any, at: int, to: Any) -> ValueError:
    return ValueError(
        f"[broadcast_to] input dimension at index {axis} ({dim}) must be either 1 or equal to "
        f"corresponding output dimension at index {at} ({to})"
    )


def check_broadcast(shape: tuple[int, ...], dims: tuple[int, ...]) -> None:
    """Raise `not_broadcastable` where this execution's sizes do not broadcast."""
    for axis, size in enumerate(shape):
        at = len(dims) - len(shape) + axis
        if size not in (1, dims[at]):
            raise not_broadcastable(axis, size, at, dims[at])
