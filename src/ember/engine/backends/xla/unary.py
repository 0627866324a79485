"""XLA lowerings of the functions of one value (`graph/ops/unary.py`): narrow floats computed
in float32 and rounded once, float32 and float64 in their own type, with the same formulas as
the native ones (`gelu` through `erfc`, `gelu_tanh` through a sigmoid), so that both stay
accurate where a difference near 1 would cancel."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ember.graph import Node
from ember.graph.ops import unary as op

from .lowering import LoweringContext, lowers

__all__ = ["FLOAT_FUNCTIONS", "lower_predicate", "lower_relu", "lower_unary"]

_SQRT_2_OVER_PI = float(np.sqrt(2 / np.pi))

FLOAT_FUNCTIONS = {
    op.EXP: jnp.exp,
    op.LOG: jnp.log,
    op.LOG1P: jnp.log1p,
    op.SQRT: jnp.sqrt,
    op.RSQRT: lax.rsqrt,
    op.TANH: jnp.tanh,
    op.ATANH: jnp.arctanh,
    op.SIN: jnp.sin,
    op.COS: jnp.cos,
    op.ACOS: lambda x: jnp.arccos(jnp.clip(x, -1, 1)),  # clamped first, as MAX does
    op.ERF: lax.erf,
    op.FLOOR: jnp.floor,
    op.CEIL: jnp.ceil,
    op.ROUND: jnp.round,  # halves to even
    op.TRUNC: jnp.trunc,
    op.SIGMOID: lax.logistic,
    op.SILU: lambda x: x * lax.logistic(x),
    op.GELU: lambda x: 0.5 * x * lax.erfc(-x * np.sqrt(0.5).astype(x.dtype)),
    op.GELU_TANH: lambda x: x * lax.logistic(2 * _SQRT_2_OVER_PI * (x + 0.044715 * x**3)),
    op.GELU_QUICK: lambda x: x * lax.logistic(1.702 * x),
}
"""Each float function, on float32 or float64 arrays."""


@lowers(*FLOAT_FUNCTIONS)
def lower_unary(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    wide = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    return FLOAT_FUNCTIONS[node.op](wide).astype(x.dtype)


@lowers(op.RELU)
def lower_relu(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    keep = x > 0
    if jnp.issubdtype(x.dtype, jnp.inexact):
        keep = keep | jnp.isnan(x)
    return jnp.where(keep, x, jnp.zeros((), x.dtype))


@lowers(op.IS_NAN, op.IS_INF)
def lower_predicate(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros(x.shape, jnp.bool_)
    return (jnp.isnan if node.op is op.IS_NAN else jnp.isinf)(x)
