"""`argsort(x, ascending=True)`: MAX's indices that sort a rank-1 value, as int64.

>>> import numpy as np
>>> from ember.graph import Graph
>>> with Graph("g") as g:
...     order = argsort(np.array([3.0, 1.0, 2.0], np.float32), ascending=False)
>>> order.shape, order.dtype
([Dim(3)], int64)

A stable sort, in either direction: equal values keep their index order (ties to the lowest
index, as `top_k`), -0.0 equals 0.0, and NaN sorts above every number (last ascending, first
descending), the same on every backend.
"""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..errors import GraphTypeError
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .constant import as_value

__all__ = ["ARGSORT", "argsort"]

ARGSORT = Op("argsort")


def argsort(x: Any, ascending: bool = True) -> TensorValue:
    """The int64 indices that sort `x` (rank 1) ascending, or descending.

    Raises:
        ValueError: `x` is not of rank 1.
        GraphTypeError: `x` holds bools.
    """
    value = as_value(x)
    if value.rank != 1:
        raise ValueError(f"argsort only implemented for input tensors of rank 1, got {value.shape}")
    if value.dtype is DType.bool:
        raise GraphTypeError("argsort: takes numbers, got bool values; cast them first")
    result = TensorType(DType.int64, value.shape, value.device)
    attrs = {"ascending": bool(ascending)}
    return current_graph().add_node(ARGSORT, [value], attrs, [result])[0]
