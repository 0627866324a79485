"""XLA lowering of `logsumexp`: `m + log(sum(exp(x - m)))` in float32, as the native one."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.logsumexp import LOGSUMEXP

from .lowering import LoweringContext, lowers

__all__ = ["lower_logsumexp"]


@lowers(LOGSUMEXP)
def lower_logsumexp(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    axis = node.attrs["axis"]
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    if x.shape[axis] == 0:
        return jnp.full((*x.shape[:axis], 1, *x.shape[axis + 1 :]), -jnp.inf, jnp.float32)
    peak = jnp.max(x, axis=axis, keepdims=True)
    shift = jnp.where(jnp.isfinite(peak), peak, 0)
    total = jnp.sum(jnp.exp(x - shift), axis=axis, keepdims=True)
    return (jnp.log(total) + shift).astype(jnp.float32)
