"""`concat(values, axis)`: values of one dtype and device joined along an axis (MAX's
`ops.concat`).

>>> from ember.graph import Graph, TensorType
>>> types = [TensorType(DType.int64, ["n", 2]), TensorType(DType.int64, [3, 2])]
>>> with Graph("g", input_types=types) as g:
...     joined = concat(g.inputs, axis=0)
>>> joined.shape
[Dim(n + 3), Dim(2)]
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable
from typing import Any

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..errors import GraphTypeError
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .axis import normalize_axis
from .constant import as_value

__all__ = ["CONCAT", "concat"]

CONCAT = Op("concat")


def concat(original_vals: Iterable[Any], axis: int = 0) -> TensorValue:
    """The values in order along `axis` (negative: from the end); every other dim must match.
    The joined dim is the sum of theirs (a symbolic one stays an expression).

    Raises:
        ValueError: no values, ranks or other dims that differ, or values on different
            devices.
        TypeError: dtypes that differ (cast first: no promotion here, as in MAX).
        AxisError: `axis` out of range (an `IndexError`, as MAX raises).
    """
    values = [as_value(v) for v in original_vals]
    if not values:
        raise ValueError("concat: needs at least one value")
    first = values[0]
    if first.rank == 0:
        raise ValueError("concat: takes values of rank 1 or more, got a scalar")
    axis = normalize_axis("concat", axis, first.rank)
    for v in values[1:]:
        if v.rank != first.rank:
            raise ValueError(f"concat: ranks differ: {first.shape} and {v.shape}")
        if v.dtype != first.dtype:
            raise GraphTypeError(f"concat: dtypes differ: {first.dtype!r} and {v.dtype!r}")
        if v.device != first.device:
            raise ValueError(
                f"concat: Input values must be on the same device; they live on {first.device} "
                f"and {v.device}: move one with .to(device)"
            )
        for i, (a, b) in enumerate(zip(first.shape, v.shape, strict=True)):
            if i != axis and a != b:
                raise ValueError(
                    f"concat: the values differ off axis {axis}, on axis {i}: {first.shape} "
                    f"and {v.shape}"
                )
    shape = list(first.shape)
    shape[axis] = functools.reduce(operator.add, (v.shape[axis] for v in values))
    result = TensorType(first.dtype, shape, first.device)
    return current_graph().add_node(CONCAT, values, {"axis": axis}, [result])[0]
