"""XLA lowering of `cumsum`: `lax.cumsum` in the value's dtype (float32 in float64, the
executable turning 64-bit types on for it; bfloat16 and float16 in float32, as MAX sums them)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ember.graph import Node
from ember.graph.ops.cumsum import CUMSUM

from .lowering import LoweringContext, lowers

__all__ = ["lower_cumsum"]


@lowers(CUMSUM)
def lower_cumsum(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    axis, exclusive, reverse = (node.attrs[k] for k in ("axis", "exclusive", "reverse"))
    floating = jnp.issubdtype(x.dtype, jnp.floating)
    wide = x.astype(jnp.float32 if x.dtype.itemsize < 4 else jnp.float64) if floating else x
    if x.shape[axis] == 0:
        return x
    sums = lax.cumsum(wide, axis=axis, reverse=reverse)
    if exclusive:  # each sum moved one place on, from 0
        zero = jnp.zeros_like(lax.slice_in_dim(sums, 0, 1, axis=axis))
        if reverse:
            sums = jnp.concatenate([lax.slice_in_dim(sums, 1, None, axis=axis), zero], axis)
        else:
            sums = jnp.concatenate([zero, lax.slice_in_dim(sums, 0, -1, axis=axis)], axis)
    return sums.astype(x.dtype)
