"""Native lowering of `masked_scatter`: numpy's boolean assignment, the count checked first."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.masked_scatter import MASKED_SCATTER, masked_scatter_error

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_masked_scatter"]


@lowers(MASKED_SCATTER)
def lower_masked_scatter(ctx: LoweringContext, node: Node) -> StepFn:
    """Inputs past the updates only order the node after those that bind `out_dim`."""
    out_dim = node.attrs["out_dim"]

    def run(rt, slot, x, mask, updates, *binders):
        count, flat = int(np.count_nonzero(mask)), updates.reshape(-1)
        expected = -1 if out_dim is None else out_dim.evaluate(rt.bindings)
        if (expected >= 0 and count != expected) or (count > flat.size and flat.size != 1):
            raise masked_scatter_error(count, flat.size, expected)
        out = x.copy()
        out[np.broadcast_to(mask, x.shape)] = flat[0] if flat.size == 1 else flat[:count]
        return out

    return run
