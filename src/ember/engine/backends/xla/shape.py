"""XLA lowerings of ops that reshape or slice a value on its own device."""

from __future__ import annotations

import jax

from ember.graph import Node
from ember.graph.ops.rebind import REBIND, check_rebind
from ember.graph.ops.reshape import RESHAPE, reshaped
from ember.graph.ops.slice import SLICE, concrete_index, slice_too_long

from .lowering import LoweringContext, lowers

__all__ = ["lower_rebind", "lower_reshape", "lower_slice"]


@lowers(RESHAPE)
def lower_reshape(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    return reshaped(x, node.attrs["shape"], ctx.bindings)


@lowers(SLICE)
def lower_slice(ctx: LoweringContext, node: Node, x: jax.Array, *binders: jax.Array) -> jax.Array:
    """Inputs past the value only order the node after those that bind its dim ends."""
    index = node.attrs["index"]
    for axis, size in node.attrs["needs"].items():  # shapes are static under jit: at tracing
        if x.shape[axis] < size:
            raise slice_too_long(axis, x.shape[axis], size, index)
    return x[concrete_index(index, ctx.bindings, x.shape) if node.attrs["dim_ends"] else index]


@lowers(REBIND)
def lower_rebind(ctx: LoweringContext, node: Node, x: jax.Array, *binders: jax.Array) -> jax.Array:
    """Shapes are static under jit: a wrong one raises at tracing."""
    check_rebind(node.attrs, x.shape, ctx.bindings)
    return x
