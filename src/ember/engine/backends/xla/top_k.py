"""XLA lowering of `top_k`, on int32 keys in the values' order (-0.0 equal to 0.0, NaN above
+inf): `lax.top_k` puts the lower index first among equal keys, so ties match the native
backend's exactly."""

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
        raise k_beyond_axis_error(k, axis, x.shape)
    _, ids = lax.top_k(order_keys(moved), k)
    values = jnp.take_along_axis(moved, ids, axis=-1)
    return jnp.moveaxis(values, -1, axis), jnp.moveaxis(ids.astype(jnp.int64), -1, axis)


def order_keys(values: jax.Array, equal_zeros: bool = True) -> jax.Array:
    """int32 keys in the order of float `values` (float32 or narrower): -0.0 equal to 0.0
    (below it unless `equal_zeros`), and every NaN equal to every other and above +inf. Taken
    from the bits alone: JAX runs XLA's CPU code with subnormals flushed to zero, so a float
    comparison would rank a subnormal as 0."""
    wide = values.astype(jnp.float32)
    bits = lax.bitcast_convert_type(wide, jnp.int32)
    magnitude = bits & jnp.int32(0x7FFF_FFFF)
    if equal_zeros:
        bits = jnp.where(magnitude == 0, jnp.int32(0), bits)
    keys = bits ^ ((bits >> 31) & jnp.int32(0x7FFF_FFFF))
    return jnp.where(magnitude > jnp.int32(0x7F80_0000), jnp.int32(0x7FFF_FFFF), keys)  # NaN
