"""Native lowering of `allgather`: CPU devices share memory, so the inputs are copied once into
one result, and every device gets a read-only view of it."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.allgather import ALLGATHER

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_allgather"]


@lowers(ALLGATHER)
def lower_allgather(ctx: LoweringContext, node: Node) -> StepFn:
    axis = node.attrs["axis"]

    def run(rt, slot, *inputs):
        whole = np.concat(inputs, axis=axis)
        if len(inputs) == 1:
            return whole
        whole.flags.writeable = False  # one buffer: no device's result may change another's
        return tuple(whole.view() for _ in inputs)

    return run
