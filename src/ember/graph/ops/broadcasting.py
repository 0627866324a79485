"""The type rule shared by every op that combines values elementwise.

>>> broadcast_shapes(Shape(["batch", 1, 4]), Shape([3, 1]))
[Dim('batch'), Dim(3), Dim(4)]
"""

from __future__ import annotations

import numbers
from typing import Any

import ml_dtypes
import numpy as np

from ember.dlpack import host_array
from ember.dtype import DType

from ..dim import StaticDim
from ..errors import GraphTypeError
from ..graph import current_graph
from ..op import Op
from ..shape import Shape
from ..type import TensorType
from ..value import TensorValue
from ..weight import Weight
from .cast import cast
from .constant import _constant_node, _to_array, as_value
from .promotion import promoted_dtype

__all__ = ["broadcast_shapes", "elementwise_node", "operands", "scalar_in"]


def broadcast_shapes(a: Shape, b: Shape) -> Shape:
    """Numpy's rule over static and symbolic dims: equal dims, or one of them is 1.

    Raises:
        ValueError: two dims differ and neither is 1.
    """
    rank = max(len(a), len(b))
    padded_a = [StaticDim(1)] * (rank - len(a)) + list(a)
    padded_b = [StaticDim(1)] * (rank - len(b)) + list(b)
    dims = []
    for axis, (x, y) in enumerate(zip(padded_a, padded_b, strict=True)):
        if x == y or y == 1:
            dims.append(x)
        elif x == 1:
            dims.append(y)
        else:
            raise ValueError(
                f"shapes {a} and {b} do not broadcast: dim {x!r} against {y!r} at axis {axis} "
                "(dims must be equal, or one of them 1)"
            )
    return Shape(dims)


def operands(op: str, a: Any, b: Any) -> tuple[TensorValue, TensorValue]:
    """Two values on one device with one dtype: a Python scalar or a host array beside a graph
    value takes its dtype (and device: `_weak_array`), and two graph values' dtypes meet in
    `promotion.promoted_dtype` (a cast added to the other operand).

    Raises:
        TypeError: neither dtype holds the other's values, or a scalar does not fit the other
            operand's dtype.
        ValueError: the values live on different devices.
    """
    if _is_scalar(a) and _is_scalar(b):
        raise TypeError(f"{op}: at least one operand must be a graph value, got {a!r} and {b!r}")
    if _is_scalar(a):
        b = as_value(b)
        a = _scalar(op, a, b)
    elif _is_scalar(b):
        a = as_value(a)
        b = _scalar(op, b, a)
    elif _in_graph(a) and not _in_graph(b):
        a = as_value(a)
        b = _weak_array(op, b, a)
    elif _in_graph(b) and not _in_graph(a):
        b = as_value(b)
        a = _weak_array(op, a, b)
    else:
        a, b = as_value(a), as_value(b)
    if a.device != b.device:
        raise ValueError(
            f"{op}: operands must be on the same device; they live on {a.device} and "
            f"{b.device}: move one with .to(device) first"
        )
    if a.dtype != b.dtype:
        dtype = promoted_dtype(op, a.dtype, b.dtype)
        a, b = cast(a, dtype), cast(b, dtype)
    return a, b


def elementwise_node(op: Op, inputs: list[TensorValue], dtype: DType) -> TensorValue:
    """Add an elementwise node whose result shape is the broadcast of its inputs' shapes."""
    shape = inputs[0].shape
    for other in inputs[1:]:
        shape = broadcast_shapes(shape, other.shape)
    result = TensorType(dtype, shape, inputs[0].device)
    return current_graph().add_node(op, inputs, {}, [result])[0]


def _in_graph(x: Any) -> bool:
    return isinstance(x, TensorValue | Weight)


def _weak_array(op: str, value: Any, like: TensorValue) -> TensorValue:
    """A host array beside a graph value, as MAX promotes it (a weak operand): of the value's
    dtype, on its device. Integers must be exact in that dtype; floats may round, but do not
    become integers.

    Raises:
        GraphTypeError: a float array beside an integer or bool value, or integers the
            value's dtype cannot hold exactly.
    """
    if not isinstance(value, np.ndarray | np.generic):
        host = host_array(value)  # a Buffer or torch tensor's values
        if host is None:
            return as_value(value)  # not an array: as_value says what it takes
        value = host
    array = _to_array(value, None)
    dtype = like.dtype
    given = DType.from_numpy(array.dtype)
    if given.is_float() and not dtype.is_float():
        raise GraphTypeError(
            f"{op}: a {given!r} array cannot combine with {dtype!r} values without losing "
            "its fractions; cast one operand first"
        )
    if array.size and not given.is_float():
        low, high = _exact_range(dtype)
        if not (low <= int(array.min()) and int(array.max()) <= high):
            raise GraphTypeError(
                f"{op}: the array's values ({int(array.min())} to {int(array.max())}) are not "
                f"all exact in {dtype!r}; cast one operand first"
            )
    with np.errstate(over="ignore", invalid="ignore"):
        converted = array.astype(dtype.to_numpy())
    return _constant_node(current_graph(), converted, like.device)


def _exact_range(dtype: DType) -> tuple[int, int]:
    """The integers `dtype` holds exactly, from the least to the greatest."""
    if dtype is DType.bool:
        return 0, 1
    if dtype.is_integral():
        info = np.iinfo(dtype.to_numpy())
        return int(info.min), int(info.max)
    info = ml_dtypes.finfo(dtype.to_numpy())
    exact = min(2 ** (int(info.nmant) + 1), int(float(info.max)))
    return -exact if float(info.min) < 0 else 0, exact


def _is_scalar(x: Any) -> bool:
    return isinstance(x, numbers.Number) and not isinstance(x, np.ndarray)


def _scalar(op: str, scalar: Any, like: TensorValue) -> TensorValue:
    value = scalar_in(op, scalar, like.dtype)
    return _constant_node(current_graph(), value, like.device)


def scalar_in(op: str, scalar: Any, dtype: DType) -> np.ndarray:
    """A Python number as a rank-0 array of `dtype`, where it fits: an integer dtype takes
    whole numbers in its range, bool 0 and 1; a float past a float dtype's range is inf, as
    MAX promotes it.

    Raises:
        GraphTypeError: the number does not fit `dtype`.
    """
    target = dtype.to_numpy()
    if dtype.is_integral() and not float(scalar).is_integer():
        raise GraphTypeError(
            f"{op}: {scalar!r} is not an integer; it cannot combine with {dtype!r}"
        )
    if dtype is DType.bool and scalar not in (0, 1):
        raise GraphTypeError(f"{op}: {scalar!r} is not a bool; it cannot combine with bool values")
    if dtype.is_integral():
        info = np.iinfo(target)
        if not info.min <= scalar <= info.max:
            raise GraphTypeError(f"{op}: {scalar!r} does not fit {dtype!r}")
    with np.errstate(over="ignore"):
        return np.asarray(scalar).astype(target)
