"""Native lowerings of elementwise ops (arithmetic, comparison, logic, select) via numpy."""

from __future__ import annotations

import numpy as np

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

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["ELEMENTWISE_OPS", "lower_elementwise"]


ELEMENTWISE_OPS = {
    ADD: np.add,
    SUB: np.subtract,
    MUL: np.multiply,
    DIV: np.true_divide,  # of floats: `div` casts integers to float64
    FLOOR_DIV: np.floor_divide,
    MOD: np.mod,
    POW: np.power,
    MAX: np.maximum,
    MIN: np.minimum,
    NEGATE: np.negative,
    ABS: np.abs,
    EQUAL: np.equal,
    NOT_EQUAL: np.not_equal,
    GREATER: np.greater,
    GREATER_EQUAL: np.greater_equal,
    LESS: np.less,
    LESS_EQUAL: np.less_equal,
    LOGICAL_AND: np.logical_and,
    LOGICAL_OR: np.logical_or,
    LOGICAL_XOR: np.logical_xor,
    LOGICAL_NOT: np.logical_not,
    SELECT: np.where,
}


@lowers(*ELEMENTWISE_OPS)
def lower_elementwise(ctx: LoweringContext, node: Node) -> StepFn:
    fn = ELEMENTWISE_OPS[node.op]
    dtype = node.result_types[0].dtype.to_numpy()

    def run(rt, slot, *arrays):
        return np.asarray(fn(*arrays)).astype(dtype, copy=False)

    return run
