"""XLA lowering of `repeat_interleave`: `jax.numpy.repeat` to the size the graph declares
(shapes are static under jit); a counts value is checked on the device, and raises after
the segment runs, so an `out_dim` past the machine's memory is refused first."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.repeat_interleave import REPEAT_INTERLEAVE, repeats_error

from .lowering import LoweringContext, lowers
from .result_memory import refuse_past_memory

__all__ = ["lower_repeat_interleave"]


@lowers(REPEAT_INTERLEAVE)
def lower_repeat_interleave(
    ctx: LoweringContext, node: Node, x: jax.Array, *rest: jax.Array
) -> jax.Array:
    """Inputs past the counts only order the node after those that bind `out_dim`."""
    axis = node.attrs["axis"]
    if "repeats" in node.attrs:
        return jnp.repeat(x, node.attrs["repeats"], axis)
    size, expected = x.shape[axis], node.attrs["out_dim"].evaluate(ctx.bindings)
    result_bytes = expected * math.prod(x.shape[:axis] + x.shape[axis + 1 :]) * x.dtype.itemsize
    refuse_past_memory("repeat_interleave", expected, result_bytes)
    counts = rest[0]
    negative = (counts < 0).any()  # before one count meets an empty axis
    counts = jnp.broadcast_to(counts.reshape(()), (size,)) if counts.size == 1 else counts
    if counts.shape[0] != size:  # found at tracing
        raise repeats_error(0, expected, counts.shape[0], size)
    x64 = jax.config.jax_enable_x64
    wide = jnp.int64 if x64 else jnp.int32
    counts = counts.astype(wide)  # a uint64 count past int64 turns negative
    # a sum near the integer type's end would wrap (float sums: a margin for their rounding)
    past = counts.astype(jnp.float64 if x64 else jnp.float32).sum() >= (
        2.0**62 if x64 else 2.0**31 * 0.99
    )
    total = jnp.where(negative | past | (counts < 0).any(), -1, counts.sum())
    ctx.require(total == expected, [total, expected], lambda facts: repeats_error(*facts))
    return jnp.repeat(x, jnp.maximum(counts, 0), axis, total_repeat_length=expected)
