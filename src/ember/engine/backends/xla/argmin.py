"""XLA lowering of `argmin`: floats are compared by their order keys (-0.0 equal to 0.0), NaN
given the lowest key, where `jnp.argmin` takes the first of equal values."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.argmax import empty_axis_error
from ember.graph.ops.argmin import ARGMIN

from .lowering import LoweringContext, lowers
from .top_k import order_keys

__all__ = ["argmin_indices", "lower_argmin"]


@lowers(ARGMIN)
def lower_argmin(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    if x.shape[node.attrs["axis"]] == 0:  # shapes are static under jit: found at tracing
        raise empty_axis_error("argmin", node.attrs["axis"], x.shape, "smallest")
    return argmin_indices(x, node.attrs["axis"]).astype(jnp.int64)


def argmin_indices(x: jax.Array, axis: int) -> jax.Array:
    """The index of the smallest value along `axis` (kept, of size 1): the first NaN where
    there is one, else the first of the smallest, subnormals ranked by their bits."""
    keys = x
    if jnp.issubdtype(x.dtype, jnp.floating):
        keys = order_keys(x)
        keys = jnp.where(jnp.isnan(x), jnp.iinfo(keys.dtype).min, keys)
    return jnp.argmin(keys, axis=axis, keepdims=True)
