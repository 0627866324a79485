"""`argmin(x, axis)`: where the smallest value along an axis is, the lowest index on ties.

>>> import numpy as np
>>> from ember.graph import Graph
>>> with Graph("g") as g:
...     ids = argmin(np.array([[3.0, 1.0, 1.0], [2.0, 0.0, -1.0]], np.float32))
>>> ids.shape, ids.dtype
([Dim(2), Dim(1)], int64)
"""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..dim import StaticDim
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .argmax import check_not_empty, ranked_value
from .axis import normalize_axis

__all__ = ["ARGMIN", "argmin"]

ARGMIN = Op("argmin")


def argmin(x: Any, axis: int = -1) -> TensorValue:
    """int64 indices of the smallest values along `axis`, which stays as a dim of size 1 (as in
    MAX). Ties go to the lowest index, on every backend, as `numpy.argmin` does. NaN counts as
    smaller than every number (as in `numpy.argmin` and `torch.argmin`): a slice holding NaN
    gives its first NaN. -0.0 and 0.0 are equal. Over bools, False is the smaller: the first
    False, else 0.

    Raises:
        ValueError: the axis is empty.
        AxisError: `axis` is out of range for `x`.
    """
    value = ranked_value("argmin", x, floats_only=False)
    axis = normalize_axis("argmin", axis, value.rank)
    check_not_empty("argmin", value, axis, "smallest")
    shape = list(value.shape)
    shape[axis] = StaticDim(1)
    result = TensorType(DType.int64, shape, value.device)
    return current_graph().add_node(ARGMIN, [value], {"axis": axis}, [result])[0]
