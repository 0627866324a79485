"""XLA lowering of `rms_norm`: in float32 (float64 in float64), rounded where MAX's variant
rounds, as the native one."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.rms_norm import RMS_NORM

from .elementwise import divide_rounded_once
from .lowering import LoweringContext, lowers

__all__ = ["lower_rms_norm"]


@lowers(RMS_NORM)
def lower_rms_norm(ctx: LoweringContext, node: Node, x: jax.Array, weight: jax.Array) -> jax.Array:
    if x.shape[-1] == 0:
        return x
    wide = jnp.promote_types(x.dtype, jnp.float32)
    v = x.astype(wide)
    scale = weight.astype(wide) + jnp.asarray(node.attrs["weight_offset"], wide)
    root = jnp.sqrt(jnp.mean(v * v, axis=-1, keepdims=True) + node.attrs["epsilon"])
    normalized = divide_rounded_once(v, root)
    if not node.attrs["multiply_before_cast"]:
        normalized = normalized.astype(x.dtype).astype(wide)
    return (normalized * scale).astype(x.dtype)
