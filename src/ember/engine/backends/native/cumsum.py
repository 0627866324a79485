"""Native lowering of `cumsum`: numpy's running sum, one element after another, in the
value's dtype (float32 in float64, bfloat16 and float16 in float32, as MAX sums them)."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.cumsum import CUMSUM

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_cumsum"]

_WIDER = {1: np.float32, 2: np.float32, 4: np.float64, 8: np.float64}
"""The dtype a float of each size is summed in."""


@lowers(CUMSUM)
def lower_cumsum(ctx: LoweringContext, node: Node) -> StepFn:
    axis, exclusive, reverse = (node.attrs[k] for k in ("axis", "exclusive", "reverse"))
    dtype = node.result_types[0].dtype.to_numpy()

    def run(rt, slot, x):
        wide = x.astype(_WIDER[x.dtype.itemsize]) if x.dtype.kind not in "iu" else x
        if reverse:
            wide = np.flip(wide, axis)
        with np.errstate(all="ignore"):  # inf + -inf: NaN, as IEEE gives
            sums = np.cumsum(wide, axis=axis, dtype=wide.dtype)
        if exclusive:  # each sum moved one place on, from 0: no subtraction, no rounding
            sums = np.roll(sums, 1, axis)
            np.moveaxis(sums, axis, 0)[:1] = 0
        if reverse:
            sums = np.flip(sums, axis)
        return np.ascontiguousarray(sums).astype(dtype, copy=False)

    return run
