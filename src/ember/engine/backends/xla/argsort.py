"""XLA lowering of `argsort`: a stable sort of integer keys in the values' order (the
complements for descending), as the native one."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.argsort import ARGSORT

from .lowering import LoweringContext, lowers
from .top_k import order_keys

__all__ = ["lower_argsort"]


@lowers(ARGSORT)
def lower_argsort(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    keys = x if jnp.issubdtype(x.dtype, jnp.integer) else order_keys(x)
    keys = keys if node.attrs["ascending"] else ~keys
    return jnp.argsort(keys, stable=True).astype(jnp.int64)
