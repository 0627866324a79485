"""Native lowering of `cast`: numpy's conversion (ml_dtypes for bfloat16 and float8)."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.cast import CAST

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_cast"]


@lowers(CAST)
def lower_cast(ctx: LoweringContext, node: Node) -> StepFn:
    dtype = node.attrs["dtype"].to_numpy()

    def run(rt, slot, x):
        with np.errstate(over="ignore"):  # a float too large for the dtype is inf, as in IEEE
            return np.asarray(x).astype(dtype)

    run.fast_step = True  # reads nothing of its runtime: it may follow a fast step
    return run
