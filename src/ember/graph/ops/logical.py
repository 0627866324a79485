"""Boolean logic over bool values, with broadcasting."""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..value import TensorValue
from .broadcasting import elementwise_node, operands
from .constant import as_value

__all__ = ["logical_and", "logical_not", "logical_or", "logical_xor"]


def _require_bool(op: str, value: TensorValue) -> None:
    if value.dtype is not DType.bool:
        raise TypeError(f"{op}: expected bool values, got {value.dtype!r}; compare or cast first")


def _logical(op: str, a: Any, b: Any) -> TensorValue:
    x, y = operands(op, a, b)
    _require_bool(op, x)
    return elementwise_node(op, [x, y], DType.bool)


def logical_and(lhs: Any, rhs: Any) -> TensorValue:
    return _logical("logical_and", lhs, rhs)


def logical_or(lhs: Any, rhs: Any) -> TensorValue:
    return _logical("logical_or", lhs, rhs)


def logical_xor(lhs: Any, rhs: Any) -> TensorValue:
    return _logical("logical_xor", lhs, rhs)


def logical_not(x: Any) -> TensorValue:
    value = as_value(x)
    _require_bool("logical_not", value)
    return elementwise_node("logical_not", [value], DType.bool)
