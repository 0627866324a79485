"""`select(condition, x, y)`: elementwise choice between two values, broadcast together."""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..errors import GraphTypeError
from ..op import Op
from ..value import TensorValue
from .broadcasting import elementwise_node, operands
from .constant import as_value

__all__ = ["SELECT", "select", "where"]

SELECT = Op("select")


def select(condition: Any, x: Any, y: Any) -> TensorValue:
    """`x` where `condition` holds, else `y`.

    Raises:
        GraphTypeError (a TypeError and, as MAX raises, a ValueError): `condition` is not
            bool, or neither of `x`'s and `y`'s dtypes holds the other's values
            (`promotion.promoted_dtype`).
        ValueError: the three live on different devices or do not broadcast.
    """
    cond = as_value(condition)
    if cond.dtype is not DType.bool:
        raise GraphTypeError(f"select: the condition must be bool, got {cond.dtype!r}")
    a, b = operands("select", x, y)
    if cond.device != a.device:
        raise ValueError(f"select: condition on {cond.device}, values on {a.device}; use .to()")
    return elementwise_node(SELECT, [cond, a, b], a.dtype)


def where(condition: Any, x: Any, y: Any) -> TensorValue:
    """MAX's name for `select`."""
    return select(condition, x, y)
