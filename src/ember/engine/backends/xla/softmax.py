"""XLA lowerings of `softmax` and `logsoftmax`: narrow floats in float32, after subtracting
the axis' largest value, as the native ones."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.softmax import LOGSOFTMAX, SOFTMAX

from .elementwise import divide_rounded_once
from .lowering import LoweringContext, lowers

__all__ = ["lower_softmax"]


@lowers(SOFTMAX, LOGSOFTMAX)
def lower_softmax(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    axis = node.attrs["axis"]
    if x.shape[axis] == 0:
        return x
    wide = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    shifted = wide - jnp.max(wide, axis=axis, keepdims=True)
    if node.op is LOGSOFTMAX:
        result = shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))
    else:
        e = jnp.exp(shifted)
        result = divide_rounded_once(e, jnp.sum(e, axis=axis, keepdims=True))
    return result.astype(x.dtype)
