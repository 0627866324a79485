"""XLA lowering of `layer_norm`: the last axis reduced in float32 (float64 in float64)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.layer_norm import LAYER_NORM

from .elementwise import divide_rounded_once
from .lowering import LoweringContext, lowers

__all__ = ["lower_layer_norm"]


@lowers(LAYER_NORM)
def lower_layer_norm(
    ctx: LoweringContext, node: Node, x: jax.Array, gamma: jax.Array, beta: jax.Array
) -> jax.Array:
    wide = jnp.promote_types(x.dtype, jnp.float32)
    if x.shape[-1] == 0:
        return x
    v = x.astype(wide)
    centered = v - jnp.mean(v, axis=-1, keepdims=True)
    variance = jnp.mean(centered * centered, axis=-1, keepdims=True)
    normalized = divide_rounded_once(centered, jnp.sqrt(variance + node.attrs["epsilon"]))
    return (normalized * gamma.astype(wide) + beta.astype(wide)).astype(x.dtype)
