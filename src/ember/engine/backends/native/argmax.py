"""Native lowering of `argmax`: numpy's, which takes the first of equal values and the first
NaN, exactly the op's rule."""

from __future__ import annotations

from typing import Any

import numpy as np

from ember.graph import Node
from ember.graph.ops.argmax import ARGMAX, empty_axis_error

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["arg_extreme", "arg_extreme_step", "lower_argmax"]


@lowers(ARGMAX)
def lower_argmax(ctx: LoweringContext, node: Node) -> StepFn:
    return arg_extreme_step(node, np.argmax, "argmax", "largest")


def arg_extreme_step(node: Node, pick: Any, op: str, extreme: str) -> StepFn:
    """The step of `argmax` or `argmin`."""
    axis = node.attrs["axis"]

    def run(rt, slot, x):
        return arg_extreme(x, pick, op, axis, extreme).astype(np.int64, copy=False)

    return run


def arg_extreme(x: np.ndarray, pick: Any, op: str, axis: int, extreme: str) -> np.ndarray:
    """numpy's `pick` (`argmax` or `argmin`) along `axis`, kept: the first of equal values and
    the first NaN, exactly the ops' rule.

    Raises:
        ValueError: the axis (a symbolic one) is empty in this call.
    """
    if x.shape[axis] == 0:
        raise empty_axis_error(op, axis, x.shape, extreme)
    if x.dtype.kind == "V":  # bfloat16 and the other narrow floats widen exactly
        x = x.astype(np.float32)
    return pick(x, axis=axis, keepdims=True)
