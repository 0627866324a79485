"""XLA lowering of `broadcast_to`: `jnp.broadcast_to` to the dims of this trace; a shape given
as a graph value is compared with them on the device and raises after the segment runs."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.broadcast_to import BROADCAST_TO, check_broadcast, wrong_shape

from .lowering import LoweringContext, lowers

__all__ = ["lower_broadcast_to"]


@lowers(BROADCAST_TO)
def lower_broadcast_to(ctx: LoweringContext, node: Node, x: jax.Array, *rest) -> jax.Array:
    """Inputs past `x` (and the shape value, where given) only order the node after the
    inputs that bind the target's dims; their data is not read."""
    dims = tuple(node.attrs["shape"].evaluate(ctx.bindings))
    if node.attrs["checked"] and dims:
        sizes, count = rest[0], len(dims)
        wide = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
        facts = [*sizes, *dims] if 2 * count < ctx.ROW_FACTS else []  # the sizes, where they fit
        ctx.require(
            jnp.all(sizes.astype(wide) == jnp.asarray(dims, wide)),
            facts,
            lambda facts: wrong_shape(facts[:count], facts[count:]),
        )
    check_broadcast(x.shape, dims)  # shapes are static under jit: at tracing
    return jnp.broadcast_to(x, dims)
