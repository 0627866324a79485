"""Boolean logic over bool values, with broadcasting. A value of another dtype is a
`GraphTypeError`: a `TypeError`, and the `ValueError` MAX raises."""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..errors import GraphTypeError
from ..op import Op
from ..value import TensorValue
from .broadcasting import elementwise_node, operands
from .constant import as_value

__all__ = [
    "LOGICAL_AND",
    "LOGICAL_NOT",
    "LOGICAL_OR",
    "LOGICAL_XOR",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
]

LOGICAL_AND = Op("logical_and")
LOGICAL_OR = Op("logical_or")
LOGICAL_XOR = Op("logical_xor")
LOGICAL_NOT = Op("logical_not")


def _require_bool(op: object, value: TensorValue) -> None:
    if value.dtype is not DType.bool:
        raise GraphTypeError(
            f"{op}: expected bool values, got {value.dtype!r}; compare or cast first"
        )


def _logical(op: Op, a: Any, b: Any) -> TensorValue:
    x, y = operands(op, a, b)
    _require_bool(op, x)
    return elementwise_node(op, [x, y], DType.bool)


def logical_and(lhs: Any, rhs: Any) -> TensorValue:
    return _logical(LOGICAL_AND, lhs, rhs)


def logical_or(lhs: Any, rhs: Any) -> TensorValue:
    return _logical(LOGICAL_OR, lhs, rhs)


def logical_xor(lhs: Any, rhs: Any) -> TensorValue:
    return _logical(LOGICAL_XOR, lhs, rhs)


def logical_not(x: Any) -> TensorValue:
    value = as_value(x)
    _require_bool("logical_not", value)
    return elementwise_node(LOGICAL_NOT, [value], DType.bool)
