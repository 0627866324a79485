"""XLA lowering of `argmax`: floats are compared by their order keys (NaN above +inf, -0.0
equal to 0.0), where `jnp.argmax` takes the first of equal values."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.argmax import ARGMAX, empty_axis_error

from .lowering import LoweringContext, lowers
from .top_k import order_keys

__all__ = ["argmax_indices", "lower_argmax"]


@lowers(ARGMAX)
def lower_argmax(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    if x.shape[node.attrs["axis"]] == 0:  # shapes are static under jit: found at tracing
        raise empty_axis_error("argmax", node.attrs["axis"], x.shape)
    return argmax_indices(x, node.attrs["axis"]).astype(jnp.int64)


def argmax_indices(x: jax.Array, axis: int) -> jax.Array:
    """The index of the largest value along `axis` (kept, of size 1): the first NaN where
    there is one, else the first of the largest, subnormals ranked by their bits."""
    keys = order_keys(x) if jnp.issubdtype(x.dtype, jnp.floating) else x
    return jnp.argmax(keys, axis=axis, keepdims=True)
