"""XLA lowering of `qmatmul`: the table decoded by the registry's `jax.numpy` decoder inside the
jitted call (no dequantized table is kept between calls), then the products with float32
accumulation, each logit summed in one order whatever rows the call covers (`rowdot`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.qmatmul import QMATMUL

from .decode import decode
from .lowering import LoweringContext, lowers
from .rowdot import rowdot

__all__ = ["lower_qmatmul"]


@lowers(QMATMUL)
def lower_qmatmul(ctx: LoweringContext, node: Node, lhs: jax.Array, rhs: jax.Array) -> jax.Array:
    table = decode(node.attrs["encoding"].name, rhs)
    flat = rowdot(lhs.astype(jnp.float32).reshape(-1, table.shape[1]), table.T)
    return flat.reshape(*lhs.shape[:-1], table.shape[0])
