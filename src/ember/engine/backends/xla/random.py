"""XLA lowering of `ops.random`: Threefry-2x32 words of each position under the seed
(`backends/threefry.py`, the same arithmetic as natively), made uniform or normal values;
float32 and narrower in float32."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.random import RANDOM

from ..threefry import random_words
from .lowering import LoweringContext, lowers

__all__ = ["lower_random"]


@lowers(RANDOM)
def lower_random(
    ctx: LoweringContext, node: Node, seed: jax.Array, *binders: jax.Array
) -> jax.Array:
    """The inputs after the seed only order the node after the inputs that bind its dims."""
    attrs = node.attrs
    dtype = node.result_types[0].dtype.to_numpy()
    wide = dtype == jnp.float64
    shape = attrs["shape"].evaluate(ctx.bindings)
    key = seed[0]
    key0 = (key & jnp.uint64(0xFFFFFFFF)).astype(jnp.uint32)
    key1 = (key >> jnp.uint64(32)).astype(jnp.uint32)
    x0, x1 = random_words(jnp, key0, key1, math.prod(shape))
    if attrs["distribution"] == "uniform":
        values = attrs["low"] + attrs["span"] * _unit(x0, x1, wide)
        values = values.astype(jnp.float64 if wide else jnp.float32).astype(dtype)
        values = jnp.where(values >= attrs["high"], jnp.asarray(attrs["below_high"], dtype), values)
    else:
        float_type = jnp.float64 if wide else jnp.float32
        if wide:
            u1 = (x0.astype(float_type) + 1) * 2.0**-32
            u2 = x1.astype(float_type) * 2.0**-32
        else:
            u1 = ((x0 >> 8).astype(float_type) + 1) * 2.0**-24
            u2 = (x1 >> 8).astype(float_type) * 2.0**-24
        z = jnp.sqrt(-2 * jnp.log(u1)) * jnp.cos(2 * jnp.pi * u2)
        values = (attrs["mean"] + attrs["std"] * z).astype(dtype)
    return values.reshape(shape)


def _unit(x0: jax.Array, x1: jax.Array, wide: bool) -> jax.Array:
    """As the native `_unit`: float64 in `[0, 1)` (x64 is on: the seed is a uint64)."""
    if wide:
        return ((x0 >> 5).astype(jnp.float64) * 2.0**26 + (x1 >> 6).astype(jnp.float64)) * 2.0**-53
    return (x0 >> 8).astype(jnp.float64) * 2.0**-24
