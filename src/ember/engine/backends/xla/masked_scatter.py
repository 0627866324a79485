"""XLA lowering of `masked_scatter`: each true place's rank among the true places (a running
count) picks its update, under jit's static shapes; the count is checked on the device and
raises after the segment runs."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.masked_scatter import MASKED_SCATTER, masked_scatter_error

from .lowering import LoweringContext, lowers

__all__ = ["lower_masked_scatter"]


@lowers(MASKED_SCATTER)
def lower_masked_scatter(
    ctx: LoweringContext,
    node: Node,
    x: jax.Array,
    mask: jax.Array,
    updates: jax.Array,
    *binders: jax.Array,
) -> jax.Array:
    """Inputs past the updates only order the node after those that bind `out_dim`."""
    out_dim = node.attrs["out_dim"]
    expected = -1 if out_dim is None else out_dim.evaluate(ctx.bindings)
    wide = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    place = jnp.broadcast_to(mask, x.shape).reshape(-1)
    rank = jnp.cumsum(place, dtype=wide) - 1
    count = rank[-1] + 1 if rank.size else jnp.zeros((), wide)
    flat, size = updates.reshape(-1), updates.size
    fits = (count <= size) | (size == 1)
    if expected >= 0:
        fits &= count == expected
    ctx.require(fits, [count, size, expected], lambda facts: masked_scatter_error(*facts))
    if size == 0:  # nothing to take: the check above raises if a place is true
        return x
    picked = flat[jnp.clip(rank, 0, size - 1)]  # one update (size 1) fills every place
    return jnp.where(place, picked, x.reshape(-1)).reshape(x.shape)
