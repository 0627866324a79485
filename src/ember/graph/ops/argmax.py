"""`argmax(x, axis)`: where the largest value along an axis is, the lowest index on ties.

>>> import numpy as np
>>> from ember.graph import Graph
>>> with Graph("g") as g:
...     ids = argmax(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], np.float32))
>>> ids.shape, ids.dtype
([Dim(2), Dim(1)], int64)
"""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..dim import StaticDim
from ..errors import GraphTypeError
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .axis import normalize_axis
from .constant import as_value

__all__ = ["ARGMAX", "argmax", "check_not_empty", "empty_axis_error", "ranked_value"]

ARGMAX = Op("argmax")


def argmax(x: Any, axis: int = -1) -> TensorValue:
    """int64 indices of the largest values along `axis`, which stays as a dim of size 1 (as in
    MAX). Ties go to the lowest index, on every backend, as `numpy.argmax` does. NaN counts as
    larger than every number (as in `numpy.argmax` and `torch.topk`): a slice holding NaN gives
    its first NaN. -0.0 and 0.0 are equal. Over bools, True is the larger (as in MAX): the
    first True, else 0.

    Raises:
        ValueError: the axis is empty.
        AxisError: `axis` is out of range for `x`.
    """
    value = ranked_value("argmax", x, floats_only=False)
    axis = normalize_axis("argmax", axis, value.rank)
    check_not_empty("argmax", value, axis)
    shape = list(value.shape)
    shape[axis] = StaticDim(1)
    result = TensorType(DType.int64, shape, value.device)
    return current_graph().add_node(ARGMAX, [value], {"axis": axis}, [result])[0]


def ranked_value(op: str, x: Any, *, floats_only: bool) -> TensorValue:
    """`x` as a graph value of rank 1 or more, of a type its values can be ordered in (any,
    unless `floats_only`).

    Raises:
        GraphTypeError: `x` is not a float when `floats_only` (a `TypeError`, and MAX's
            `ValueError`).
        ValueError: `x` is a scalar.
    """
    value = as_value(x)
    if floats_only and not value.dtype.is_float():
        raise GraphTypeError(f"{op}: takes a float value, got {value.dtype!r}")
    if value.rank == 0:
        raise ValueError(f"{op}: takes a value of rank 1 or more, got a scalar")
    return value


def check_not_empty(op: str, value: TensorValue, axis: int, extreme: str = "largest") -> None:
    """Raises `empty_axis_error` where `value`'s axis `axis` is static and empty."""
    if value.shape[axis] == StaticDim(0):
        raise empty_axis_error(op, axis, value.shape, extreme)


def empty_axis_error(op: str, axis: int, shape: Any, extreme: str = "largest") -> ValueError:
    """The error for an empty axis: at build time for a static one, at execution (by each
    backend's lowering) for a symbolic one found empty. (`extreme`: the value `op` seeks.)"""
    return ValueError(f"{op}: axis {axis} of {shape} is empty; it has no {extreme} value")
