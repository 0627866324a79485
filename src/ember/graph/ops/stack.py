"""`stack(values, axis)`: values of one shape joined along a new axis (MAX's `ops.stack`,
numpy's `stack`): each value gains an axis of size 1 there, then they are concatenated.

>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.int64, ["n", 2])] * 3) as g:
...     stacked = stack(g.inputs, axis=1)
>>> stacked.shape
[Dim('n'), Dim(3), Dim(2)]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..errors import GraphTypeError
from ..value import TensorValue
from .axis import AxisError, normalize_axis
from .concat import concat
from .constant import as_value
from .squeeze import unsqueeze

__all__ = ["stack"]


def stack(values: Iterable[Any], axis: int = 0) -> TensorValue:
    """`axis` may be `rank` (a new last axis) or negative, counting from the end of the result.

    Raises:
        ValueError: no values, or values whose shapes differ (concat's errors for the rest).
        GraphTypeError: dtypes that differ (a `TypeError`, and MAX's `ValueError`).
        AxisError: `axis` out of range (an `IndexError`, as MAX raises).
    """
    values = [as_value(v) for v in values]
    if not values:
        raise ValueError("stack: Expected at least one value to stack")
    first = values[0]
    if len({v.rank for v in values}) > 1:  # each kind of difference over all values, as MAX
        raise ValueError(
            f"stack: All inputs to stack must be the same rank: {[v.shape for v in values]}"
        )
    if len({v.dtype for v in values}) > 1:
        raise GraphTypeError(
            f"stack: All inputs to stack must have the same dtype: {[v.dtype for v in values]}"
        )
    for v in values[1:]:
        if any(a != b for a, b in zip(v.shape, first.shape, strict=True)):
            raise ValueError(f"stack: every value must have one shape: {first.shape} and {v.shape}")
    if isinstance(axis, int) and not -first.rank - 1 <= axis <= first.rank:
        raise AxisError(
            f"stack: Axis out of range (expected to be in range of [{-first.rank - 1}, "
            f"{first.rank}], but got {axis})"
        )
    axis = normalize_axis("stack", axis, first.rank + 1)
    return concat([unsqueeze(v, axis) for v in values], axis=axis)
