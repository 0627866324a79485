"""Elementwise arithmetic with broadcasting; operands share one dtype and one device.

>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.float32, ["n", 1])]) as g:
...     y = add(g.inputs[0], constant(np.ones((1, 8), np.float32)))
>>> y.shape
[Dim('n'), Dim(8)]
"""

from __future__ import annotations

from typing import Any

import numpy as np  # noqa: F401 - used by the doctest

from ember.dtype import DType

from ..value import TensorValue
from .broadcasting import elementwise_node, operands
from .constant import as_value, constant  # noqa: F401 - constant is used by the doctest

__all__ = [
    "abs",
    "add",
    "div",
    "floor_div",
    "max",
    "min",
    "mod",
    "mul",
    "negate",
    "pow",
    "sub",
]


def _numeric(op: str, a: Any, b: Any) -> TensorValue:
    x, y = operands(op, a, b)
    if x.dtype is DType.bool:
        raise TypeError(f"{op}: arithmetic needs numbers, got bool values; cast them first")
    return elementwise_node(op, [x, y], x.dtype)


def add(lhs: Any, rhs: Any) -> TensorValue:
    return _numeric("add", lhs, rhs)


def sub(lhs: Any, rhs: Any) -> TensorValue:
    return _numeric("sub", lhs, rhs)


def mul(lhs: Any, rhs: Any) -> TensorValue:
    return _numeric("mul", lhs, rhs)


def div(lhs: Any, rhs: Any) -> TensorValue:
    """True division; integers divide with truncation toward zero, as MAX does."""
    return _numeric("div", lhs, rhs)


def floor_div(lhs: Any, rhs: Any) -> TensorValue:
    return _numeric("floor_div", lhs, rhs)


def mod(lhs: Any, rhs: Any) -> TensorValue:
    return _numeric("mod", lhs, rhs)


def pow(lhs: Any, rhs: Any) -> TensorValue:
    return _numeric("pow", lhs, rhs)


def max(lhs: Any, rhs: Any) -> TensorValue:
    return _numeric("max", lhs, rhs)


def min(lhs: Any, rhs: Any) -> TensorValue:
    return _numeric("min", lhs, rhs)


def _unary(op: str, x: Any) -> TensorValue:
    value = as_value(x)
    if value.dtype is DType.bool:
        raise TypeError(f"{op}: arithmetic needs numbers, got bool values")
    return elementwise_node(op, [value], value.dtype)


def negate(x: Any) -> TensorValue:
    return _unary("negate", x)


def abs(x: Any) -> TensorValue:
    return _unary("abs", x)
