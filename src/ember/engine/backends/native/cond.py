"""`cond`: the block of the branch the predicate picks (`ember.graph.block`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ember.graph import Node
from ember.graph.ops.cond import COND

from .blocks import BlockPlan
from .lowering import TOKEN, LoweringContext, StepFn, lowers
from .runtime import Runtime


@lowers(COND)
def _cond(ctx: LoweringContext, node: Node) -> StepFn:
    then, otherwise = node.attrs["then"], node.attrs["else"]
    branches = (BlockPlan(then, ctx.debug_print), BlockPlan(otherwise, ctx.debug_print))
    split = 1 + len(then.captured)
    results = len(then.outputs)

    def run(rt: Runtime, slot: int, flag: np.ndarray, *captured: Any) -> Any:
        if bool(np.asarray(flag)):
            values = branches[0](rt, captured[: split - 1])
        else:
            values = branches[1](rt, captured[split - 1 :])
        if not results:
            return TOKEN  # the branch ran for its effects
        return values[0] if results == 1 else tuple(values)

    return run
