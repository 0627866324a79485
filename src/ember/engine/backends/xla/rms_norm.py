"""XLA lowering of `rms_norm`: in float32 (float64 in float64), each row first scaled by a
power of two (exactly: no square overflows), rounded where MAX's variant rounds, as the native
one."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.layer_norm import check_features
from ember.graph.ops.rms_norm import RMS_NORM

from .elementwise import divide_rounded_once
from .layer_norm import scaled_rows
from .lowering import LoweringContext, lowers

__all__ = ["lower_rms_norm"]


@lowers(RMS_NORM)
def lower_rms_norm(ctx: LoweringContext, node: Node, x: jax.Array, weight: jax.Array) -> jax.Array:
    check_features("rms_norm", x.shape[-1], weight=weight.shape[0])  # static under jit
    if x.shape[-1] == 0:
        return x
    wide = jnp.promote_types(x.dtype, jnp.float32)
    v, exponent = scaled_rows(x.astype(wide))
    scale = weight.astype(wide) + jnp.asarray(node.attrs["weight_offset"], wide)
    n = jnp.asarray(x.shape[-1], wide)
    mean_square = divide_rounded_once(jnp.sum(v * v, axis=-1, keepdims=True), n)
    epsilon = jnp.ldexp(jnp.asarray(node.attrs["epsilon"], wide), -2 * exponent)
    normalized = divide_rounded_once(v, jnp.sqrt(mean_square + epsilon))
    if not node.attrs["multiply_before_cast"]:
        normalized = normalized.astype(x.dtype).astype(wide)
    return (normalized * scale).astype(x.dtype)
