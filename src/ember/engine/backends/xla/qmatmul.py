"""XLA lowering of `qmatmul`: the table's rows decoded by the registry's `jax.numpy` decoder
inside the jitted call, a block at a time for several tokens (no dequantized table is kept
between calls), and dotted with float32 accumulation, each logit summed in one order whatever
rows the call covers (`rowdot`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ember.graph import Node
from ember.graph.ops.qmatmul import QMATMUL

from .decode import decode
from .lowering import LoweringContext, lowers
from .rowdot import rowdot

__all__ = ["lower_qmatmul"]


@lowers(QMATMUL)
def lower_qmatmul(ctx: LoweringContext, node: Node, lhs: jax.Array, rhs: jax.Array) -> jax.Array:
    name = node.attrs["encoding"].name
    width = node.attrs["encoding"].hidden_size(rhs.shape[1])

    def read(start, count):  # for several tokens a block at a time: never the whole table
        return decode(name, lax.dynamic_slice_in_dim(rhs, start, count, axis=0))

    flat = rowdot(lhs.astype(jnp.float32).reshape(-1, width), rhs.shape[0], read, row_axis=0)
    return flat.reshape(*lhs.shape[:-1], rhs.shape[0])
