"""XLA lowering of `gather_nd`: each index vector's components flagged where they fall outside
the dims they index (one check a component, in order, for the host to raise), negative ones
counted from the end, then one advanced index."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.gather_nd import GATHER_ND

from .gather import valid_ids
from .lowering import LoweringContext, lowers

__all__ = ["lower_gather_nd"]


@lowers(GATHER_ND)
def lower_gather_nd(
    ctx: LoweringContext, node: Node, source: jax.Array, indices: jax.Array
) -> jax.Array:
    batch_dims = node.attrs["batch_dims"]
    components = []
    for j in range(indices.shape[-1]):
        dim = source.shape[batch_dims + j]
        component = indices[..., j]
        ctx.check(node, component, ~valid_ids(component, dim, True), dim, "wrap", batch_dims + j)
        component = component.astype(jnp.int32 if dim < 2**31 else jnp.int64)  # holds `+ dim`
        components.append(jnp.where(component < 0, component + dim, component))
    lead = indices.shape[:-1]  # the batch dims, then the gathered ones
    batch = [
        jnp.broadcast_to(jnp.arange(n).reshape((n,) + (1,) * (len(lead) - i - 1)), lead)
        for i, n in enumerate(lead[:batch_dims])
    ]
    if not batch and not components:  # empty vectors: the whole input, at every one
        return jnp.broadcast_to(source, (*lead, *source.shape))
    if any(source.shape[batch_dims + j] == 0 for j in range(len(components))):
        shape = (*indices.shape[:-1], *source.shape[batch_dims + len(components) :])
        return jnp.zeros(shape, source.dtype)  # no element to read: every index was flagged
    return source[(*batch, *components)]  # a flagged index reads a clamped one, then raises
