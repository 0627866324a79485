"""`logsumexp(x, axis)`: `log(sum(exp(x)))` along an axis in float32, without overflow.

>>> import numpy as np
>>> from ember.graph import Graph
>>> with Graph("g") as g:
...     lse = logsumexp(np.array([[1000.0, 1000.0], [0.0, -np.inf]], np.float32))
>>> lse.shape, lse.dtype
([Dim(2), Dim(1)], float32)
"""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..dim import StaticDim
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .argmax import ranked_value
from .axis import normalize_axis

__all__ = ["LOGSUMEXP", "logsumexp"]

LOGSUMEXP = Op("logsumexp")


def logsumexp(x: Any, axis: int = -1) -> TensorValue:
    """The float32 `log(sum(exp(x)))` along `axis`, which stays as a dim of size 1 (as MAX's
    reductions keep theirs). Computed as `m + log(sum(exp(x - m)))` with `m` the largest value,
    so that no term overflows; `log_softmax(x) = x - logsumexp(x)` needs no softmax output.

    A slice of -inf alone gives -inf; one holding +inf gives +inf; one holding NaN gives NaN.
    An empty axis gives -inf (the log of an empty sum).

    Raises:
        TypeError: `x` is not a float value.
        AxisError: `axis` is out of range for `x`.
    """
    value = ranked_value("logsumexp", x, floats_only=True)
    axis = normalize_axis("logsumexp", axis, value.rank)
    shape = list(value.shape)
    shape[axis] = StaticDim(1)
    result = TensorType(DType.float32, shape, value.device)
    return current_graph().add_node(LOGSUMEXP, [value], {"axis": axis}, [result])[0]
