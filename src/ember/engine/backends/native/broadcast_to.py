"""Native lowering of `broadcast_to`: numpy's broadcast, written into a new array (kernels
downstream read contiguous memory)."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.broadcast_to import BROADCAST_TO, check_broadcast, wrong_shape

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_broadcast_to"]


@lowers(BROADCAST_TO)
def lower_broadcast_to(ctx: LoweringContext, node: Node) -> StepFn:
    """Inputs past `x` (and the shape value, where given) only order the step after the
    inputs that bind the target's dims; their data is not read."""
    shape, checked = node.attrs["shape"], node.attrs["checked"]

    def run(rt, slot, x, *rest):
        dims = shape.evaluate(rt.bindings)
        if checked and rest[0].tolist() != list(dims):
            raise wrong_shape(rest[0].tolist(), list(dims))
        check_broadcast(x.shape, tuple(dims))
        result = np.empty(dims, x.dtype)
        result[...] = x
        return result

    return run
