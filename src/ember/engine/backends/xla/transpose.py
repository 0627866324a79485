"""XLA lowering of `transpose`."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.transpose import TRANSPOSE

from .lowering import LoweringContext, lowers

__all__ = ["lower_transpose"]


@lowers(TRANSPOSE)
def lower_transpose(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    return jnp.transpose(x, node.attrs["permutation"])
