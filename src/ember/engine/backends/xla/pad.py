"""XLA lowering of `pad`: `jax.numpy.pad`, whose three modes are numpy's and MAX's."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.pad import PAD, empty_axis_pad_error

from .lowering import LoweringContext, lowers

__all__ = ["lower_pad"]


@lowers(PAD)
def lower_pad(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    widths, mode = node.attrs["paddings"], node.attrs["mode"]
    pairs = list(zip(widths[::2], widths[1::2], strict=True))
    if mode != "constant":
        for axis, (size, pair) in enumerate(zip(x.shape, pairs, strict=True)):
            if size == 0 and any(pair):  # shapes are static under jit: found at tracing
                raise empty_axis_pad_error(mode, axis)
        return jnp.pad(x, pairs, mode=mode)
    return jnp.pad(x, pairs, constant_values=jnp.asarray(node.attrs["value"], x.dtype))
