"""XLA lowering of `concat`: `jnp.concatenate`."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.concat import CONCAT

from .lowering import LoweringContext, lowers

__all__ = ["lower_concat"]


@lowers(CONCAT)
def lower_concat(ctx: LoweringContext, node: Node, *values: jax.Array) -> jax.Array:
    return jnp.concatenate(values, axis=node.attrs["axis"])
