"""Bags' IEEE 754-2019 maxima (NaN above everything, +0 above -0) on XLA, taken on the int32
order keys of the float32 bits (`top_k.order_keys`): JAX runs XLA's CPU code with subnormals
flushed to zero, so a float maximum would read a subnormal row as 0, where the keys' integer
maximum keeps every bit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .top_k import order_keys

__all__ = ["maximum", "segment_maximum"]

_MAGNITUDE = np.int32(0x7FFF_FFFF)
_NAN_KEY = np.int32(0x7FFF_FFFF)
_NONE = np.int32(-(2**31))
"""An empty segment's integer maximum."""


def _values(keys: jax.Array) -> jax.Array:
    bits = keys ^ ((keys >> 31) & _MAGNITUDE)
    values = lax.bitcast_convert_type(bits, jnp.float32)
    values = jnp.where(keys == _NAN_KEY, np.float32(np.nan), values)
    return jnp.where(keys == _NONE, np.float32(-np.inf), values)


def segment_maximum(values: jax.Array, segments: jax.Array, **options) -> jax.Array:
    """`jax.ops.segment_max` of float32 `values`, exact: -inf for an empty segment."""
    return _values(jax.ops.segment_max(order_keys(values, equal_zeros=False), segments, **options))


def maximum(a: jax.Array, b: jax.Array) -> jax.Array:
    """`jnp.maximum` of float32 arrays, exact."""
    return _values(jnp.maximum(order_keys(a, equal_zeros=False), order_keys(b, equal_zeros=False)))
