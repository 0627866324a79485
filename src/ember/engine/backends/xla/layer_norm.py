"""XLA lowering of `layer_norm`: the last axis reduced in float32 (float64 in float64), each row
first scaled by a power of two (exactly: no square overflows) and shifted by its first value
(a row of one value is then exactly zeros, and gives `beta`), the mean divided once."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.layer_norm import LAYER_NORM, check_features

from .elementwise import divide_rounded_once
from .lowering import LoweringContext, lowers

__all__ = ["lower_layer_norm", "scaled_rows"]


@lowers(LAYER_NORM)
def lower_layer_norm(
    ctx: LoweringContext, node: Node, x: jax.Array, gamma: jax.Array, beta: jax.Array
) -> jax.Array:
    check_features("layer_norm", x.shape[-1], gamma=gamma.shape[0], beta=beta.shape[0])
    if x.shape[-1] == 0:
        return x
    wide = jnp.promote_types(x.dtype, jnp.float32)
    v, exponent = scaled_rows(x.astype(wide))
    v = v - v[..., :1]
    n = jnp.asarray(x.shape[-1], wide)
    centered = v - divide_rounded_once(jnp.sum(v, axis=-1, keepdims=True), n)
    variance = divide_rounded_once(jnp.sum(centered * centered, axis=-1, keepdims=True), n)
    epsilon = jnp.ldexp(jnp.asarray(node.attrs["epsilon"], wide), -2 * exponent)
    normalized = divide_rounded_once(centered, jnp.sqrt(variance + epsilon))
    normalized = jnp.where(centered == 0, 0, normalized)  # a scaled epsilon can underflow to 0
    return (normalized * gamma.astype(wide) + beta.astype(wide)).astype(x.dtype)


def scaled_rows(v: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`(v * 2**-e, e)` per row along the last axis, `e >= 0` the exponent of the row's
    largest magnitude, as the native backend scales them."""
    _, exponent = jnp.frexp(jnp.max(jnp.abs(v), axis=-1, keepdims=True))
    exponent = jnp.maximum(exponent, 0)
    return jnp.ldexp(v, -exponent), exponent
