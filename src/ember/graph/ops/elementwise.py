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

from ..errors import GraphTypeError
from ..op import Op
from ..value import TensorValue
from .broadcasting import elementwise_node, operands
from .cast import cast
from .constant import as_value, constant  # noqa: F401 - constant is used by the doctest
from .reduction import reduce_max, reduce_min

__all__ = [
    "ABS",
    "ADD",
    "DIV",
    "FLOOR_DIV",
    "MAX",
    "MIN",
    "MOD",
    "MUL",
    "NEGATE",
    "POW",
    "SUB",
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

ADD = Op("add")
SUB = Op("sub")
MUL = Op("mul")
DIV = Op("div")
FLOOR_DIV = Op("floor_div")
MOD = Op("mod")
POW = Op("pow")
MAX = Op("max")
MIN = Op("min")
NEGATE = Op("negate")
ABS = Op("abs")


def _numeric(op: Op, a: Any, b: Any) -> TensorValue:
    x, y = operands(op, a, b)
    if x.dtype is DType.bool:
        raise GraphTypeError(f"{op}: arithmetic needs numbers, got bool values; cast them first")
    return elementwise_node(op, [x, y], x.dtype)


def add(lhs: Any, rhs: Any) -> TensorValue:
    return _numeric(ADD, lhs, rhs)


def sub(lhs: Any, rhs: Any) -> TensorValue:
    return _numeric(SUB, lhs, rhs)


def mul(lhs: Any, rhs: Any) -> TensorValue:
    return _numeric(MUL, lhs, rhs)


def div(lhs: Any, rhs: Any) -> TensorValue:
    """True division, as Python's ``/`` and MAX's: two integer operands are cast to float64
    first (a float64 result); floats follow IEEE (inf, NaN), each quotient rounded once."""
    x, y = operands(DIV, lhs, rhs)
    if x.dtype.is_integral() and x.dtype is not DType.bool:
        x, y = cast(x, DType.float64), cast(y, DType.float64)
    return _numeric(DIV, x, y)


def floor_div(lhs: Any, rhs: Any) -> TensorValue:
    return _numeric(FLOOR_DIV, lhs, rhs)


def mod(lhs: Any, rhs: Any) -> TensorValue:
    return _numeric(MOD, lhs, rhs)


def pow(lhs: Any, rhs: Any) -> TensorValue:
    return _numeric(POW, lhs, rhs)


def max(lhs: Any, rhs: Any = None, /, axis: int | None = None) -> TensorValue:
    """The elementwise maximum of two values; of one, its largest along `axis` (-1 if not
    given), as MAX's overload does.

    Raises:
        ValueError: two values and an axis.
    """
    return _one_or_two(MAX, reduce_max, lhs, rhs, axis)


def min(lhs: Any, rhs: Any = None, /, axis: int | None = None) -> TensorValue:
    """The elementwise minimum of two values; of one, its smallest along `axis` (-1 if not
    given), as MAX's overload does.

    Raises:
        ValueError: two values and an axis.
    """
    return _one_or_two(MIN, reduce_min, lhs, rhs, axis)


def _one_or_two(op: Op, reduce: Any, lhs: Any, rhs: Any, axis: int | None) -> TensorValue:
    if rhs is None:
        return reduce(lhs, -1 if axis is None else axis)
    if axis is not None:
        raise ValueError(f"{op}: Axis not allowed for elementwise {op} (of two values)")
    x, y = operands(op, lhs, rhs)  # of bools too: numpy's or (max) and and (min)
    return elementwise_node(op, [x, y], x.dtype)


def _unary(op: Op, x: Any) -> TensorValue:
    value = as_value(x)
    if value.dtype is DType.bool:
        raise GraphTypeError(f"{op}: arithmetic needs numbers, got bool values")
    return elementwise_node(op, [value], value.dtype)


def negate(x: Any) -> TensorValue:
    return _unary(NEGATE, x)


def abs(x: Any) -> TensorValue:
    return _unary(ABS, x)
