"""Comparisons: operands broadcast like arithmetic, results are bool."""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..value import TensorValue
from .broadcasting import elementwise_node, operands

__all__ = ["equal", "greater", "greater_equal", "less", "less_equal", "not_equal"]


def _compare(op: str, a: Any, b: Any) -> TensorValue:
    x, y = operands(op, a, b)
    return elementwise_node(op, [x, y], DType.bool)


def equal(lhs: Any, rhs: Any) -> TensorValue:
    return _compare("equal", lhs, rhs)


def not_equal(lhs: Any, rhs: Any) -> TensorValue:
    return _compare("not_equal", lhs, rhs)


def greater(lhs: Any, rhs: Any) -> TensorValue:
    return _compare("greater", lhs, rhs)


def greater_equal(lhs: Any, rhs: Any) -> TensorValue:
    return _compare("greater_equal", lhs, rhs)


def less(lhs: Any, rhs: Any) -> TensorValue:
    return _compare("less", lhs, rhs)


def less_equal(lhs: Any, rhs: Any) -> TensorValue:
    return _compare("less_equal", lhs, rhs)
