"""XLA lowerings of elementwise ops (arithmetic, comparison, logic, select) via `jax.numpy`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ember.graph import Node
from ember.graph.ops.comparison import EQUAL, GREATER, GREATER_EQUAL, LESS, LESS_EQUAL, NOT_EQUAL
from ember.graph.ops.elementwise import (
    ABS,
    ADD,
    DIV,
    FLOOR_DIV,
    MAX,
    MIN,
    MOD,
    MUL,
    NEGATE,
    POW,
    SUB,
)
from ember.graph.ops.logical import LOGICAL_AND, LOGICAL_NOT, LOGICAL_OR, LOGICAL_XOR
from ember.graph.ops.select import SELECT

from .lowering import LoweringContext, lowers

__all__ = ["ELEMENTWISE_OPS", "divide_rounded_once", "lower_elementwise"]


def divide_rounded_once(a: jax.Array, b: jax.Array) -> jax.Array:
    """`a / b` for floats, each quotient rounded once, as numpy and the native backend give
    it: XLA turns a division by a broadcast divisor into a product with its reciprocal (an ulp
    off), unless the divisor reaches the division whole, behind a barrier."""
    shape = jnp.broadcast_shapes(a.shape, b.shape)
    return jnp.true_divide(a, lax.optimization_barrier(jnp.broadcast_to(b, shape)))


ELEMENTWISE_OPS = {
    ADD: jnp.add,
    SUB: jnp.subtract,
    MUL: jnp.multiply,
    DIV: divide_rounded_once,  # of floats: `div` casts integers to float64
    FLOOR_DIV: jnp.floor_divide,
    MOD: jnp.mod,
    POW: jnp.power,
    MAX: jnp.maximum,
    MIN: jnp.minimum,
    NEGATE: jnp.negative,
    ABS: jnp.abs,
    EQUAL: jnp.equal,
    NOT_EQUAL: jnp.not_equal,
    GREATER: jnp.greater,
    GREATER_EQUAL: jnp.greater_equal,
    LESS: jnp.less,
    LESS_EQUAL: jnp.less_equal,
    LOGICAL_AND: jnp.logical_and,
    LOGICAL_OR: jnp.logical_or,
    LOGICAL_XOR: jnp.logical_xor,
    LOGICAL_NOT: jnp.logical_not,
    SELECT: jnp.where,
}


@lowers(*ELEMENTWISE_OPS)
def lower_elementwise(ctx: LoweringContext, node: Node, *arrays: jax.Array) -> jax.Array:
    result = ELEMENTWISE_OPS[node.op](*arrays)
    return result.astype(node.result_types[0].dtype.to_numpy())
