"""XLA lowering of `matmul`: float32 accumulation at full precision (XLA's default may drop
to bfloat16 passes on accelerators); a narrow operand is widened to float32 first. A product
with a 2-D right side (the LM head's) sums each element in one order (`rowdot`), so that a
vocabulary shard's logits have the unsharded head's bits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ember.graph import Node
from ember.graph.ops.matmul import MATMUL

from .lowering import LoweringContext, lowers
from .rowdot import rowdot

__all__ = ["lower_matmul"]


@lowers(MATMUL)
def lower_matmul(ctx: LoweringContext, node: Node, lhs: jax.Array, rhs: jax.Array) -> jax.Array:
    dtype = node.result_types[0].dtype.to_numpy()
    if jnp.issubdtype(dtype, jnp.floating) and jnp.dtype(dtype).itemsize <= 4:
        lhs, rhs = lhs.astype(jnp.float32), rhs.astype(jnp.float32)
        if rhs.ndim == 2 and rhs.shape[0] == 0:  # no products: empty sums are zeros
            return jnp.zeros((*lhs.shape[:-1], rhs.shape[1]), dtype)
        if rhs.ndim == 2:  # the LM head: each logit's bits the same on any shard of the rows
            flat = rowdot(
                lhs.reshape(-1, rhs.shape[0]),
                rhs.shape[1],
                lambda start, count: lax.dynamic_slice_in_dim(rhs, start, count, axis=1),
                row_axis=1,
            )
            return flat.reshape(*lhs.shape[:-1], rhs.shape[1]).astype(dtype)
        product = jnp.matmul(lhs, rhs, precision=lax.Precision.HIGHEST)
        return product.astype(dtype)
    return jnp.matmul(lhs, rhs, precision=lax.Precision.HIGHEST, preferred_element_type=dtype)
