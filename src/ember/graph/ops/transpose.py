"""`transpose(x, axis_1, axis_2)`: the same elements with two axes swapped.

>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.float32, ["batch", 4, 8])]) as g:
...     y = transpose(g.inputs[0], 0, -1)
>>> y.shape
[Dim(8), Dim(4), Dim('batch')]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .axis import normalize_axis
from .constant import as_value

__all__ = ["TRANSPOSE", "permute", "transpose"]

TRANSPOSE = Op("transpose", may_alias=True)


def transpose(x: Any, axis_1: int, axis_2: int) -> TensorValue:
    """`x` with `axis_1` and `axis_2` swapped (negative axes count from the end); a scalar is
    returned unchanged, as in MAX. The native backend returns a view: no element is copied.

    Raises:
        AxisError: either axis is out of range for `x` (an IndexError, as in MAX).
    """
    value = as_value(x)
    if value.rank == 0:
        for axis in (axis_1, axis_2):
            normalize_axis("transpose", axis, 1)
        return value
    first = normalize_axis("transpose", axis_1, value.rank)
    second = normalize_axis("transpose", axis_2, value.rank)
    if first == second:
        return value
    permutation = list(range(value.rank))
    permutation[first], permutation[second] = second, first
    shape = [value.shape[axis] for axis in permutation]
    result = TensorType(value.dtype, shape, value.device)
    attrs = {"permutation": tuple(permutation)}
    return current_graph().add_node(TRANSPOSE, [value], attrs, [result])[0]


def permute(x: Any, dims: Sequence[int]) -> TensorValue:
    """`x` with its axes in the order `dims` (MAX's `ops.permute`, numpy's `transpose`):
    result axis `i` is `x`'s axis `dims[i]` (negative: from the end).

    Raises:
        ValueError: `dims` does not name each axis once.
        AxisError: an axis out of range (an IndexError, as in MAX).
    """
    value = as_value(x)
    if len(dims) != value.rank:
        raise ValueError(
            f"permute: The rank of the input ({value.rank}) does not match the number of dims "
            f"used for ordering ({len(dims)})"
        )
    order = tuple(normalize_axis("permute", d, value.rank) for d in dims)
    if len(set(order)) != len(order):
        raise ValueError(f"permute: The ordering may not contain duplicate dimensions: {order}")
    if order == tuple(range(value.rank)):
        return value
    result = TensorType(value.dtype, [value.shape[axis] for axis in order], value.device)
    return current_graph().add_node(TRANSPOSE, [value], {"permutation": order}, [result])[0]
