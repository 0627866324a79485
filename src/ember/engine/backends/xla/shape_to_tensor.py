"""XLA lowering of `shape_to_tensor`: the sizes bound for this trace (each new binding of a
symbol retraces), as a constant of the traced function."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.shape_to_tensor import SHAPE_TO_TENSOR

from .lowering import LoweringContext, lowers

__all__ = ["lower_shape_to_tensor"]


@lowers(SHAPE_TO_TENSOR)
def lower_shape_to_tensor(ctx: LoweringContext, node: Node, *inputs: jax.Array) -> jax.Array:
    """The node's inputs only order it after them; their data is not read."""
    return jnp.asarray(node.attrs["shape"].evaluate(ctx.bindings), jnp.int64)
