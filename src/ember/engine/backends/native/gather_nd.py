"""Native lowering of `gather_nd`: each index vector's components checked against the dims
they index (in order, the first bad one raising), negative ones counted from the end, then one
numpy advanced index."""

from __future__ import annotations

import numpy as np

from ember.errors import out_of_range_ids
from ember.graph import Node
from ember.graph.ops.gather_nd import GATHER_ND

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_gather_nd"]


@lowers(GATHER_ND)
def lower_gather_nd(ctx: LoweringContext, node: Node) -> StepFn:
    batch_dims = node.attrs["batch_dims"]

    def run(rt, slot, source, indices):
        size = indices.shape[-1]
        components = []
        for j in range(size):
            dim = source.shape[batch_dims + j]
            component = indices[..., j]
            out_of_range_ids(component, dim, "wrap", batch_dims + j)
            component = component.astype(np.intp)  # in range now; wide enough to add `dim`
            components.append(np.where(component < 0, component + dim, component))
        lead = indices.shape[:-1]  # the batch dims, then the gathered ones
        batch = [
            np.broadcast_to(np.arange(n).reshape((n,) + (1,) * (len(lead) - i - 1)), lead)
            for i, n in enumerate(lead[:batch_dims])
        ]
        if not batch and not components:  # empty vectors: the whole input, at every one
            return np.array(np.broadcast_to(source, (*lead, *source.shape)))
        # integer indexing copies already; asarray makes a scalar (all dims indexed) 0-d
        return np.asarray(source[(*batch, *components)])

    return run
