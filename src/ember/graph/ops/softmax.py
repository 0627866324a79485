"""`softmax` and `logsoftmax` along one axis, MAX's signatures: the same shape and dtype.

>>> import numpy as np
>>> from ember.graph import Graph
>>> with Graph("g") as g:
...     p = softmax(np.array([[1.0, 2.0, 3.0]], np.float32))
>>> p.shape, p.dtype
([Dim(1), Dim(3)], float32)

Both subtract the axis' largest value first, so that no term overflows. A slice of -inf
alone, or holding +inf or NaN, gives NaN throughout (as torch and JAX do). Natively a float32
or narrower value is computed in float64 and rounded once. On `xla` it is computed in float32
(the sums' order is XLA's): `softmax` within a relative 2**-16 of the exact value, and
`logsoftmax` within `2**-20 * (1 + |x - max|)` of it (near 0 the float32 log of a sum near 1
has lost the digits a relative bound would ask for).
"""

from __future__ import annotations

from typing import Any

from ..graph import current_graph
from ..op import Op
from ..value import TensorValue
from .argmax import ranked_value
from .axis import normalize_axis

__all__ = ["LOGSOFTMAX", "SOFTMAX", "logsoftmax", "softmax"]

SOFTMAX = Op("softmax")
LOGSOFTMAX = Op("logsoftmax")


def _along(op: Op, value: Any, axis: int) -> TensorValue:
    x = ranked_value(str(op), value, floats_only=True)
    attrs = {"axis": normalize_axis(str(op), axis, x.rank)}
    return current_graph().add_node(op, [x], attrs, [x.type])[0]


def softmax(value: Any, axis: int = -1) -> TensorValue:
    """`exp(x) / sum(exp(x))` along `axis`.

    Raises:
        TypeError: `value` is not a float value.
        ValueError: `value` is a scalar.
        AxisError: `axis` is out of range for `value`.
    """
    return _along(SOFTMAX, value, axis)


def logsoftmax(value: Any, axis: int = -1) -> TensorValue:
    """`x - log(sum(exp(x)))` along `axis`, without a softmax in between.

    Raises:
        TypeError: `value` is not a float value.
        ValueError: `value` is a scalar.
        AxisError: `axis` is out of range for `value`.
    """
    return _along(LOGSOFTMAX, value, axis)
