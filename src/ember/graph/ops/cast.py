"""`cast(x, dtype)`: the same values in another element type."""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .constant import as_value

__all__ = ["CAST", "cast"]

CAST = Op("cast")


def cast(x: Any, dtype: DType) -> TensorValue:
    """Raises TypeError when `dtype` is not a DType."""
    value = as_value(x)
    if not isinstance(dtype, DType):
        raise TypeError(f"cast: dtype must be a DType, got {dtype!r}")
    if dtype is value.dtype:
        return value
    result = TensorType(dtype, value.shape, value.device)
    return current_graph().add_node(CAST, [value], {"dtype": dtype}, [result])[0]
