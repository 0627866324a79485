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
        return np.asarray(x).astype(dtype)

    return run
