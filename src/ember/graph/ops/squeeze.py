"""`squeeze` drops an axis of size 1; `unsqueeze` inserts one."""

from __future__ import annotations

from typing import Any

from ..dim import StaticDim
from ..graph import current_graph
from ..type import TensorType
from ..value import TensorValue
from .axis import normalize_axis
from .constant import as_value
from .reshape import RESHAPE, reshape

__all__ = ["squeeze", "unsqueeze"]


def squeeze(x: Any, axis: int) -> TensorValue:
    """Raises ValueError when the axis is not statically 1, AxisError when out of range."""
    value = as_value(x)
    axis = normalize_axis("squeeze", axis, value.rank)
    if value.shape[axis] != StaticDim(1):
        raise ValueError(f"squeeze: axis {axis} of {value.shape} is not 1")
    return reshape(value, [d for i, d in enumerate(value.shape) if i != axis])


def unsqueeze(x: Any, axis: int) -> TensorValue:
    """Insert a 1 at `axis`, which may be `rank` (append) or negative (-1 appends)."""
    value = as_value(x)
    axis = normalize_axis("unsqueeze", axis, value.rank + 1)
    shape = list(value.shape)
    shape.insert(axis, StaticDim(1))
    result = TensorType(value.dtype, shape, value.device)
    return current_graph().add_node(RESHAPE, [value], {"shape": result.shape}, [result])[0]
