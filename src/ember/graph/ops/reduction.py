"""Reductions along one axis, which stays as a dim of size 1 (MAX's `ops.sum`, `ops.mean`,
`ops.prod`, and `ops.max` / `ops.min` given one value): the pooling of a lookup's rows, a
norm's statistics.

>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.float32, ["batch", 8])]) as g:
...     total = reduce_sum(g.inputs[0])
>>> total.shape, total.dtype
([Dim('batch'), Dim(1)], float32)
"""

from __future__ import annotations

from typing import Any

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..dim import StaticDim
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .argmax import check_not_empty, ranked_value
from .axis import normalize_axis

__all__ = ["REDUCE", "max", "mean", "min", "prod", "reduce_max", "reduce_mean",
           "reduce_min", "reduce_prod", "reduce_sum", "sum"]  # fmt: skip

REDUCE = Op("reduce")
"""Its node's `kind` is "sum", "mean", "prod", "max" or "min"."""


def _reduce(kind: str, x: Any, axis: int) -> TensorValue:
    """The node of one reduction, of the value's dtype; floats narrower than float32 are
    reduced in float32 and the result rounded once to their dtype, on every backend.

    Raises:
        ValueError: a scalar, or `max` / `min` of a static empty axis.
        AxisError: `axis` out of range.
    """
    value = ranked_value(kind, x, floats_only=False)
    axis = normalize_axis(kind, axis, value.rank)
    if kind in ("max", "min"):
        check_not_empty(kind, value, axis, "largest" if kind == "max" else "smallest")
    shape = list(value.shape)
    shape[axis] = StaticDim(1)
    result = TensorType(value.dtype, shape, value.device)
    return current_graph().add_node(REDUCE, [value], {"kind": kind, "axis": axis}, [result])[0]


def reduce_sum(x: Any, axis: int = -1) -> TensorValue:
    """The sum along `axis` (0 for an empty one); integers wrap as their dtype does; of bools,
    whether any is true (numpy's bool sum)."""
    return _reduce("sum", x, axis)


def reduce_mean(x: Any, axis: int = -1) -> TensorValue:
    """The mean along `axis`: of floats, NaN for an empty one; of integers, the exact mean
    (summed in 64 bits, 32 on `xla` without 64-bit types) truncated toward zero, as numpy's
    integer mean (0 for an empty one); of bools, whether all are true."""
    return _reduce("mean", x, axis)


def reduce_prod(x: Any, axis: int = -1) -> TensorValue:
    """The product along `axis` (1 for an empty one); of bools, whether all are true."""
    return _reduce("prod", x, axis)


def reduce_max(x: Any, axis: int = -1) -> TensorValue:
    """The largest value along `axis`; NaN where the slice holds one."""
    return _reduce("max", x, axis)


def reduce_min(x: Any, axis: int = -1) -> TensorValue:
    """The smallest value along `axis`; NaN where the slice holds one."""
    return _reduce("min", x, axis)


sum, mean, prod, max, min = reduce_sum, reduce_mean, reduce_prod, reduce_max, reduce_min
"""MAX's names in its `ops.reduction` module (`ops.max` and `ops.min` also take two values)."""
