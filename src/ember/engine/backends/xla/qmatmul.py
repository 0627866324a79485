"""XLA lowering of `qmatmul`: the table decoded by the registry's `jax.numpy` decoder inside the
jitted call (no dequantized table is kept between calls), then one product at full precision
with float32 accumulation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ember.graph import Node
from ember.graph.ops.qmatmul import QMATMUL

from .decode import decode
from .lowering import LoweringContext, lowers

__all__ = ["lower_qmatmul"]


@lowers(QMATMUL)
def lower_qmatmul(ctx: LoweringContext, node: Node, lhs: jax.Array, rhs: jax.Array) -> jax.Array:
    table = decode(node.attrs["encoding"].name, rhs)
    return jnp.matmul(
        lhs.astype(jnp.float32),
        table.T,
        precision=lax.Precision.HIGHEST,
        preferred_element_type=jnp.float32,
    )
