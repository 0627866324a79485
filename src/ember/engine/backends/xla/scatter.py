"""XLA lowerings of `scatter` and `scatter_nd`, as the native ones: indices flagged where they
fall outside their dim (raised on the host after the segment runs) and wrapped; a plain
scatter writes each target once, with its last update (XLA leaves repeated targets to
chance: the others are dropped first); the combining forms are XLA's scatters."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from ember.graph import Node
from ember.graph.ops.scatter import SCATTER, SCATTER_ND

from .gather import valid_ids
from .lowering import LoweringContext, lowers

__all__ = ["lower_scatter", "lower_scatter_nd"]


@lowers(SCATTER)
def lower_scatter(
    ctx: LoweringContext, node: Node, x: jax.Array, updates: jax.Array, indices: jax.Array
) -> jax.Array:
    axis = node.attrs["axis"]
    for d, (size, limit) in enumerate(zip(updates.shape, x.shape, strict=True)):
        if d != axis and size > limit:  # shapes are static under jit: found at tracing
            raise ValueError(f"scatter: updates {updates.shape} reach past {x.shape} in dim {d}")
    if updates.size == 0:
        return x
    size = x.shape[axis]
    ctx.check(node, indices, ~valid_ids(indices, size, True), size, "wrap", axis)
    wide = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    coords = [lax.broadcasted_iota(wide, updates.shape, d) for d in range(updates.ndim)]
    indices = indices.astype(wide)
    coords[axis] = jnp.where(indices < 0, indices + size, indices)
    return _combine(x, tuple(coords), updates, node.attrs["reduction"], x.shape)


@lowers(SCATTER_ND)
def lower_scatter_nd(
    ctx: LoweringContext, node: Node, x: jax.Array, updates: jax.Array, indices: jax.Array
) -> jax.Array:
    if updates.size == 0:
        return x
    wide = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    components = []
    for j in range(indices.shape[-1]):
        component = indices[..., j]
        ctx.check(node, component, ~valid_ids(component, x.shape[j], True), x.shape[j], "wrap", j)
        component = component.astype(wide)
        components.append(jnp.where(component < 0, component + x.shape[j], component))
    depth = len(components)
    return _combine(x, tuple(components), updates, node.attrs["reduction"], x.shape[:depth])


def _combine(x, target, updates, reduction, indexed_shape) -> jax.Array:
    """`x` with `updates` at `target` (index arrays into `x`'s first dims, `indexed_shape`)."""
    if reduction is not None:
        at = x.at[target]
        return {"add": at.add, "mul": at.multiply, "max": at.max, "min": at.min}[reduction](
            updates, mode="drop"
        )
    slots = math.prod(indexed_shape)
    flat = jnp.ravel_multi_index(target, indexed_shape, mode="clip").reshape(-1)
    order = jnp.arange(flat.shape[0], dtype=flat.dtype)
    last = jnp.full((slots,), -1, flat.dtype).at[flat].max(order)
    kept = jnp.where(last[flat] == order, flat, slots)  # the others land outside, dropped
    rest = x.shape[len(indexed_shape) :]
    flat_x = x.reshape((slots, *rest))
    values = updates.reshape((flat.shape[0], *rest))
    return flat_x.at[kept].set(values, mode="drop").reshape(x.shape)
