"""Native lowering of `nonzero`: numpy's `argwhere`, its count checked against `out_dim`."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.nonzero import NONZERO, nonzero_error

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_nonzero"]


@lowers(NONZERO)
def lower_nonzero(ctx: LoweringContext, node: Node) -> StepFn:
    """Inputs past the first only order the node after those that bind `out_dim`."""
    out_dim = node.attrs["out_dim"]

    def run(rt, slot, x, *binders):
        places = np.argwhere(x != 0).astype(np.int64, copy=False)
        expected = out_dim.evaluate(rt.bindings)
        if places.shape[0] != expected:
            raise nonzero_error(places.shape[0], expected)
        return places

    return run
