"""`top_k(input, k, axis)`: the `k` largest values along an axis, largest first, with their
indices; equal values in index order. `bottom_k`, MAX's other half, is the same op keeping
the `k` smallest, smallest first.

>>> import numpy as np
>>> from ember.graph import Graph
>>> with Graph("g") as g:
...     values, ids = top_k(np.array([1.0, 3.0, 2.0, 3.0], np.float32), k=2)
>>> values.shape, ids.dtype
([Dim(2)], int64)
"""

from __future__ import annotations

import numbers
from typing import Any

from ember.dtype import DType

from ..dim import StaticDim
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .argmax import ranked_value
from .axis import normalize_axis

__all__ = ["TOP_K", "TOP_K_DTYPES", "bottom_k", "k_beyond_axis_error", "top_k"]

TOP_K = Op("top_k")

TOP_K_DTYPES = (DType.float32, DType.bfloat16, DType.float16)
"""What `top_k` ranks: the floats that widen exactly to float32."""


def top_k(input: Any, k: int, axis: int = -1) -> tuple[TensorValue, TensorValue]:
    """`(values, indices)`: the `k` largest values along `axis`, sorted largest first, and
    their int64 indices; both have `input`'s shape with `axis` of size `k`.

    Ties go to the lowest index, on every backend and also across the k-th boundary (as
    `torch.topk(sorted=True)` and a stable descending sort): of equal values, those of lower
    index come first and are the ones kept. NaN counts as larger than every number, as in
    `torch.topk` (NaNs come first, in index order); -0.0 and 0.0 are equal.

    Raises:
        TypeError: `input` is not float32, bfloat16 or float16, or `k` is not an int.
        ValueError: `k` is outside `[1, size]` for the axis's static size.
        AxisError: `axis` is out of range for `input`.
    """
    return _kept(input, k, axis, largest=True)


def bottom_k(input: Any, k: int, axis: int = -1) -> tuple[TensorValue, TensorValue]:
    """`(values, indices)`: the `k` smallest values along `axis`, sorted smallest first, and
    their int64 indices, as `top_k` ranks them: ties to the lowest index, NaN above every
    number (so kept last, only when fewer numbers remain), -0.0 equal to 0.0.

    Raises:
        TypeError: `input` is not float32, bfloat16 or float16, or `k` is not an int.
        ValueError: `k` is outside `[1, size]` for the axis's static size.
        AxisError: `axis` is out of range for `input`.
    """
    return _kept(input, k, axis, largest=False)


def _kept(input: Any, k: int, axis: int, largest: bool) -> tuple[TensorValue, TensorValue]:
    name = "top_k" if largest else "bottom_k"
    value = ranked_value(name, input, floats_only=True)
    if value.dtype not in TOP_K_DTYPES:
        raise TypeError(
            f"{name}: takes one of {', '.join(repr(d) for d in TOP_K_DTYPES)}, got "
            f"{value.dtype!r} (cast it first)"
        )
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"{name}: k must be an int, got {k!r}")
    axis = normalize_axis(name, axis, value.rank)
    size = value.shape[axis]
    static = isinstance(size, StaticDim)
    if k < 1:
        where = f" in [1, {size}] (axis {axis} of {value.shape})" if static else " at least 1"
        raise ValueError(f"{name}: k must be{where}, got {k}")
    if static and k > int(size):
        raise ValueError(
            f"{name}: k must be in [1, {size}] (axis {axis} of {value.shape}), got {k}: k ({k}) "
            f"cannot be larger than dimension size along axis {axis}"
        )
    shape = list(value.shape)
    shape[axis] = StaticDim(int(k))
    results = [
        TensorType(value.dtype, shape, value.device),
        TensorType(DType.int64, shape, value.device),
    ]
    attrs = {"k": int(k), "axis": axis, "largest": largest}
    values, indices = current_graph().add_node(TOP_K, [value], attrs, results)
    return values, indices


def k_beyond_axis_error(k: int, axis: int, shape: Any, largest: bool = True) -> ValueError:
    """The error for a symbolic axis found shorter than `k` at execution (each backend's
    lowering raises it; `largest`: a `top_k`, else a `bottom_k`)."""
    name = "top_k" if largest else "bottom_k"
    return ValueError(
        f"{name}: k ({k}) cannot be larger than dimension size along axis {axis} of {shape}"
    )
