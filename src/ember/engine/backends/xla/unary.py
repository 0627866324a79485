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
from ember.graph.ops.unary import (
    ACOS,
    ATANH,
    CEIL,
    COS,
    ERF,
    EXP,
    FLOOR,
    GELU,
    GELU_QUICK,
    GELU_TANH,
    IS_INF,
    IS_NAN,
    LOG,
    LOG1P,
    RELU,
    ROUND,
    RSQRT,
    SIGMOID,
    SILU,
    SIN,
    SQRT,
    TANH,
    TRUNC,
)

from .lowering import LoweringContext, lowers

__all__ = ["FLOAT_FUNCTIONS", "lower_predicate", "lower_relu", "lower_unary"]

_SQRT_2_OVER_PI = float(np.sqrt(2 / np.pi))

FLOAT_FUNCTIONS = {
    EXP: jnp.exp,
    LOG: jnp.log,
    LOG1P: jnp.log1p,
    SQRT: jnp.sqrt,
    RSQRT: lax.rsqrt,
    TANH: jnp.tanh,
    ATANH: jnp.arctanh,
    SIN: jnp.sin,
    COS: jnp.cos,
    ACOS: jnp.arccos,
    ERF: lax.erf,
    FLOOR: jnp.floor,
    CEIL: jnp.ceil,
    ROUND: jnp.round,  # halves to even
    TRUNC: jnp.trunc,
    SIGMOID: lax.logistic,
    SILU: lambda x: x * lax.logistic(x),
    GELU: lambda x: 0.5 * x * lax.erfc(-x * np.sqrt(0.5).astype(x.dtype)),
    GELU_TANH: lambda x: x * lax.logistic(2 * _SQRT_2_OVER_PI * (x + 0.044715 * x**3)),
    GELU_QUICK: lambda x: x * lax.logistic(1.702 * x),
}
"""Each float function, on float32 or float64 arrays."""


@lowers(*FLOAT_FUNCTIONS)
def lower_unary(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    wide = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    return FLOAT_FUNCTIONS[node.op](wide).astype(x.dtype)


@lowers(RELU)
def lower_relu(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    keep = x > 0
    if jnp.issubdtype(x.dtype, jnp.inexact):
        keep = keep | jnp.isnan(x)
    return jnp.where(keep, x, jnp.zeros((), x.dtype))


@lowers(IS_NAN, IS_INF)
def lower_predicate(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros(x.shape, jnp.bool_)
    return (jnp.isnan if node.op is IS_NAN else jnp.isinf)(x)
