"""XLA lowering of `qmatmul`: the table's rows decoded by the registry's `jax.numpy` decoder
inside the jitted call, a block at a time for several tokens (no dequantized table is kept
between calls), and dotted with float32 accumulation, each logit summed in one order whatever
rows the call covers (`rowdot`).

With ``int8_activations`` (Q4_K, Q6_K) the hidden states are rounded to 8 bits per block of
256 values (``dx * rint(x / dx)``, ``dx = max|x| / 127``) before the products, within the
same bound as the native integer kernel."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ember.graph import Node
from ember.graph.ops.qmatmul import INT8_ACTIVATION_FORMATS, QMATMUL

from .decode import decode
from .lowering import LoweringContext, lowers
from .rowdot import rowdot

__all__ = ["lower_qmatmul"]

_ACTIVATION_BLOCK = 256


def _int8_rounded(x: jax.Array) -> jax.Array:
    """`x` as its 8-bit levels per block of 256 values give it back (NaN stays NaN)."""
    blocks = x.reshape(*x.shape[:-1], x.shape[-1] // _ACTIVATION_BLOCK, _ACTIVATION_BLOCK)
    dx = jnp.max(jnp.abs(blocks), axis=-1, keepdims=True) / jnp.float32(127)
    safe = jnp.where(dx > 0, dx, jnp.float32(1))
    levels = jnp.where(dx > 0, jnp.rint(blocks / safe), jnp.float32(0))
    return (levels * dx).reshape(x.shape)


@lowers(QMATMUL)
def lower_qmatmul(ctx: LoweringContext, node: Node, lhs: jax.Array, rhs: jax.Array) -> jax.Array:
    name = node.attrs["encoding"].name
    x = lhs.astype(jnp.float32)
    if node.attrs.get("int8_activations", False) and name in INT8_ACTIVATION_FORMATS:
        x = _int8_rounded(x)

    def read(start, count):
        return decode(name, lax.dynamic_slice_in_dim(rhs, start, count, axis=0))

    vocab = rhs.shape[0]
    flat = rowdot(x.reshape(-1, x.shape[-1]), vocab, read, row_axis=0, blocks_only=True)
    return flat.reshape(*x.shape[:-1], vocab)
