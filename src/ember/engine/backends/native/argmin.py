"""Native lowering of `argmin`: `argmax`'s step around `numpy.argmin`."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.argmin import ARGMIN

from .argmax import arg_extreme_step
from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_argmin"]


@lowers(ARGMIN)
def lower_argmin(ctx: LoweringContext, node: Node) -> StepFn:
    return arg_extreme_step(node, np.argmin, "argmin", "smallest")
