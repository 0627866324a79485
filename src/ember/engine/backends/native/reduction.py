"""Native lowering of the reductions: sums, means and products by numpy, in the value's own
dtype (integers wrap as it does) or, for floats narrower than float32, in float32 rounded once
at the end; `max` and `min` as the value at `argmax` / `argmin` (the first NaN, else the first
of equal values: -0.0 and 0.0 included)."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.reduction import REDUCE

from .argmax import arg_extreme
from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_reduce"]


def _mean(x: np.ndarray, axis: int, keepdims: bool, dtype: np.dtype) -> np.ndarray:
    """numpy's mean of floats (the sum, then one division by the count; NaN for an empty axis
    without numpy's warning); of integers the exact one, truncated toward zero; of bools,
    whether all are true."""
    count = x.shape[axis]
    if dtype.kind == "b":
        return np.all(x, axis=axis, keepdims=keepdims)
    if dtype.kind in "iu":
        total = np.sum(
            x, axis=axis, keepdims=keepdims, dtype=np.int64 if dtype.kind == "i" else np.uint64
        )
        quotient = total // max(count, 1)
        return quotient + ((total % max(count, 1) != 0) & (total < 0))
    total = np.sum(x, axis=axis, keepdims=keepdims, dtype=dtype)
    return total / dtype.type(count)


_NUMPY = {"sum": np.sum, "mean": _mean, "prod": np.prod}


@lowers(REDUCE)
def lower_reduce(ctx: LoweringContext, node: Node) -> StepFn:
    kind, axis = node.attrs["kind"], node.attrs["axis"]
    reduce = _NUMPY.get(kind)
    dtype = node.result_types[0].dtype.to_numpy()
    work = np.dtype(np.float32) if dtype.kind in "fV" and dtype.itemsize < 4 else dtype

    def run(rt, slot, x):
        if kind in ("max", "min"):  # the value at argmax / argmin, as on every backend
            pick, extreme = (np.argmax, "largest") if kind == "max" else (np.argmin, "smallest")
            at = arg_extreme(x, pick, kind, axis, extreme)
            return np.take_along_axis(x, at, axis=axis)
        with np.errstate(all="ignore"):  # overflow, an empty mean: IEEE's answers, no warnings
            return reduce(x.astype(work, copy=False), axis=axis, keepdims=True, dtype=work).astype(
                dtype, copy=False
            )

    return run
