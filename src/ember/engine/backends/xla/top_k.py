"""XLA lowering of `top_k`, on int32 keys in the values' order (-0.0 equal to 0.0, NaN above
+inf): `lax.top_k` puts the lower index first among equal keys, so ties match the native
backend's exactly. `bottom_k` ranks the keys' complements (the same order reversed)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ember.graph import Node
from ember.graph.ops.top_k import TOP_K, k_beyond_axis_error

from .lowering import LoweringContext, lowers

__all__ = ["lower_top_k", "order_keys"]


@lowers(TOP_K)
def lower_top_k(ctx: LoweringContext, node: Node, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    k, axis = node.attrs["k"], node.attrs["axis"]
    moved = jnp.moveaxis(x, axis, -1)
    if k > moved.shape[-1]:  # shapes are static under jit: found at tracing
        raise k_beyond_axis_error(k, axis, x.shape, node.attrs["largest"])
    keys = order_keys(moved)
    _, ids = lax.top_k(keys if node.attrs["largest"] else ~keys, k)
    values = jnp.take_along_axis(moved, ids, axis=-1)
    return jnp.moveaxis(values, -1, axis), jnp.moveaxis(ids.astype(jnp.int64), -1, axis)


def order_keys(values: jax.Array, equal_zeros: bool = True) -> jax.Array:
    """Integer keys in the order of float `values`: int32 for float32 and narrower (widened
    exactly), int64 for float64. -0.0 is equal to 0.0 (below it unless `equal_zeros`), and
    every NaN equal to every other and above +inf, the largest key. Taken from the bits
    alone: JAX runs XLA's CPU code with subnormals flushed to zero, so a float comparison
    would rank a subnormal as 0."""
    if values.dtype == jnp.float64:
        ints, width, infinity = jnp.int64, 64, 0x7FF0_0000_0000_0000
    else:
        values, ints, width, infinity = values.astype(jnp.float32), jnp.int32, 32, 0x7F80_0000
    largest = ints((1 << (width - 1)) - 1)
    bits = lax.bitcast_convert_type(values, ints)
    magnitude = bits & largest
    if equal_zeros:
        bits = jnp.where(magnitude == 0, ints(0), bits)
    keys = bits ^ ((bits >> (width - 1)) & largest)
    return jnp.where(magnitude > ints(infinity), largest, keys)  # NaN
