"""XLA lowering of `ops.random`: Threefry-2x32 words of each position under the seed
(`backends/threefry.py`, the same arithmetic as natively), made uniform or normal values;
float32 and narrower in float32."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.random import RANDOM

from ..threefry import random_words, unit_interval, unit_pair
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
    x0, x1 = random_words(jnp, seed, math.prod(shape))  # x64 is on: the seed is a uint64
    if attrs["distribution"] == "uniform":
        values = attrs["low"] + attrs["span"] * unit_interval(jnp, x0, x1, wide)
        values = values.astype(jnp.float64 if wide else jnp.float32).astype(dtype)
        values = jnp.where(values >= attrs["high"], jnp.asarray(attrs["below_high"], dtype), values)
    else:
        u1, u2 = unit_pair(jnp, x0, x1, wide, jnp.float64 if wide else jnp.float32)
        z = jnp.sqrt(-2 * jnp.log(u1)) * jnp.cos(2 * jnp.pi * u2)
        values = (attrs["mean"] + attrs["std"] * z).astype(dtype)
    return values.reshape(shape)
