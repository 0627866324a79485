"""Native lowering of `check_indices`: vectorized passes over the ids."""

from __future__ import annotations

import numpy as np

from ember.errors import out_of_range_ids
from ember.graph import Node
from ember.graph.ops.check_indices import CHECK_INDICES

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_check_indices"]


@lowers(CHECK_INDICES)
def lower_check_indices(ctx: LoweringContext, node: Node) -> StepFn:
    size = node.attrs["size"]
    clamp = node.attrs["out_of_range"] == "clamp"

    def run(rt, slot, ids):
        if clamp:
            top = min(size - 1, int(np.iinfo(ids.dtype).max))
            return np.clip(ids, 0, top).astype(ids.dtype, copy=False)
        out_of_range_ids(ids, size, "error")
        return ids

    return run
