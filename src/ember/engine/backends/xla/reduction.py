"""XLA lowering of the reductions: sums, means and products by `jax.numpy`, in the value's own
dtype (integers wrap as it does) or, for floats narrower than float32, in float32 rounded once
at the end; `max` and `min` as the value at `argmax` / `argmin` (bits, not float compares,
which XLA's CPU code makes with subnormals flushed to zero)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ember.graph import Node
from ember.graph.ops.argmax import empty_axis_error
from ember.graph.ops.reduction import REDUCE

from .argmax import argmax_indices
from .argmin import argmin_indices
from .lowering import LoweringContext, lowers

__all__ = ["lower_reduce"]

_JNP = {"sum": jnp.sum, "mean": jnp.mean, "prod": jnp.prod}


@lowers(REDUCE)
def lower_reduce(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    kind, axis = node.attrs["kind"], node.attrs["axis"]
    if kind in ("max", "min"):  # the value at argmax / argmin: its exact bits on every backend
        if x.shape[axis] == 0:  # shapes are static under jit: found at tracing
            extreme = "largest" if kind == "max" else "smallest"
            raise empty_axis_error(kind, axis, x.shape, extreme)
        at = (argmax_indices if kind == "max" else argmin_indices)(x, axis)
        return jnp.take_along_axis(x, at, axis=axis)
    dtype = np.dtype(x.dtype)
    if kind == "mean" and dtype.kind in "biu":
        return _integer_mean(x, axis).astype(x.dtype)
    work = jnp.float32 if dtype.kind in "fV" and dtype.itemsize < 4 else x.dtype
    return _JNP[kind](x.astype(work), axis=axis, keepdims=True, dtype=work).astype(x.dtype)


def _integer_mean(x: jax.Array, axis: int) -> jax.Array:
    """The native backend's: of bools whether all are true; of integers the exact mean, summed
    wide, truncated toward zero (XLA's integer division)."""
    if x.dtype == jnp.bool_:
        return jnp.all(x, axis=axis, keepdims=True)
    x64 = jax.config.jax_enable_x64
    signed = jnp.issubdtype(x.dtype, jnp.signedinteger)
    wide = (jnp.int64 if x64 else jnp.int32) if signed else (jnp.uint64 if x64 else jnp.uint32)
    total = jnp.sum(x.astype(wide), axis=axis, keepdims=True, dtype=wide)
    return lax.div(total, jnp.full_like(total, max(x.shape[axis], 1)))
