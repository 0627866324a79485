"""Native lowerings of elementwise ops (arithmetic, comparison, logic, select) via numpy."""

from __future__ import annotations

import numpy as np

from ember.graph import Node

from .lowering import Decode, StepFn

__all__ = ["ELEMENTWISE_OPS", "lower_elementwise"]


def _truncating_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division rounding toward zero, as C and MAX do (numpy floors)."""
    if a.dtype.kind not in "iu":
        return np.true_divide(a, b)
    with np.errstate(divide="ignore"):
        quotient = np.floor_divide(a, b)
        fix = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
    return quotient + fix.astype(quotient.dtype)


ELEMENTWISE_OPS = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": _truncating_divide,
    "floor_div": np.floor_divide,
    "mod": np.mod,
    "pow": np.power,
    "max": np.maximum,
    "min": np.minimum,
    "negate": np.negative,
    "abs": np.abs,
    "equal": np.equal,
    "not_equal": np.not_equal,
    "greater": np.greater,
    "greater_equal": np.greater_equal,
    "less": np.less,
    "less_equal": np.less_equal,
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
    "logical_not": np.logical_not,
    "select": np.where,
}


def lower_elementwise(node: Node, decode: Decode | None) -> StepFn:
    fn = ELEMENTWISE_OPS[node.op]
    dtype = node.result_types[0].dtype.to_numpy()

    def run(rt, slot, *arrays):
        return np.asarray(fn(*arrays)).astype(dtype, copy=False)

    return run
