"""Native lowering of the reductions: numpy's, in the value's own dtype (integers wrap as it
does) or, for floats narrower than float32, in float32 rounded once at the end."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.argmax import empty_axis_error
from ember.graph.ops.reduction import REDUCE

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_reduce"]


def _mean(x: np.ndarray, axis: int, keepdims: bool, dtype: np.dtype) -> np.ndarray:
    """numpy's mean (the sum, then one division by the count), NaN for an empty axis without
    numpy's warning."""
    total = np.sum(x, axis=axis, keepdims=keepdims, dtype=dtype)
    return total / dtype.type(x.shape[axis])


_NUMPY = {"sum": np.sum, "mean": _mean, "prod": np.prod, "max": np.max, "min": np.min}


@lowers(REDUCE)
def lower_reduce(ctx: LoweringContext, node: Node) -> StepFn:
    kind, axis = node.attrs["kind"], node.attrs["axis"]
    reduce = _NUMPY[kind]
    dtype = node.result_types[0].dtype.to_numpy()
    work = np.dtype(np.float32) if dtype.kind in "fV" and dtype.itemsize < 4 else dtype
    typed = {"dtype": work} if kind in ("sum", "mean", "prod") else {}

    def run(rt, slot, x):
        if kind in ("max", "min") and x.shape[axis] == 0:  # a symbolic axis, empty here
            raise empty_axis_error(kind, axis, x.shape, "largest" if kind == "max" else "smallest")
        with np.errstate(all="ignore"):  # overflow, an empty mean: IEEE's answers, no warnings
            return reduce(x.astype(work, copy=False), axis=axis, keepdims=True, **typed).astype(
                dtype, copy=False
            )

    return run
