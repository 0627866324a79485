"""Comparisons: operands broadcast like arithmetic, results are bool."""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..op import Op
from ..value import TensorValue
from .broadcasting import elementwise_node, operands

__all__ = [
    "EQUAL",
    "GREATER",
    "GREATER_EQUAL",
    "LESS",
    "LESS_EQUAL",
    "NOT_EQUAL",
    "equal",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "not_equal",
]

EQUAL = Op("equal")
NOT_EQUAL = Op("not_equal")
GREATER = Op("greater")
GREATER_EQUAL = Op("greater_equal")
LESS = Op("less")
LESS_EQUAL = Op("less_equal")


def _compare(op: Op, a: Any, b: Any) -> TensorValue:
    x, y = operands(op, a, b)
    return elementwise_node(op, [x, y], DType.bool)


def equal(lhs: Any, rhs: Any) -> TensorValue:
    return _compare(EQUAL, lhs, rhs)


def not_equal(lhs: Any, rhs: Any) -> TensorValue:
    return _compare(NOT_EQUAL, lhs, rhs)


def greater(lhs: Any, rhs: Any) -> TensorValue:
    return _compare(GREATER, lhs, rhs)


def greater_equal(lhs: Any, rhs: Any) -> TensorValue:
    return _compare(GREATER_EQUAL, lhs, rhs)


def less(lhs: Any, rhs: Any) -> TensorValue:
    return _compare(LESS, lhs, rhs)


def less_equal(lhs: Any, rhs: Any) -> TensorValue:
    return _compare(LESS_EQUAL, lhs, rhs)
