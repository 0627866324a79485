"""Native lowering of `nonzero`: numpy's `argwhere`, its count checked against `out_dim` (or,
for a new name, binding it for the steps after)."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.nonzero import NONZERO, nonzero_error

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_nonzero"]


@lowers(NONZERO)
def lower_nonzero(ctx: LoweringContext, node: Node) -> StepFn:
    """Inputs past the first only order the node after those that bind `out_dim`."""
    out_dim, binds = node.attrs["out_dim"], node.attrs["binds"]

    def run(rt, slot, x, *binders):
        places = np.argwhere(x != 0).astype(np.int64, copy=False)
        if binds is not None and binds not in rt.bindings:  # a new name: the count binds it
            rt.bindings[binds] = places.shape[0]
        expected = out_dim.evaluate(rt.bindings)
        if places.shape[0] != expected:
            raise nonzero_error(places.shape[0], expected)
        return places

    return run
