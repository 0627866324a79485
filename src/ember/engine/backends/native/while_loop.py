"""`while_loop`: the predicate's block, then the body's while it holds (`ember.graph.block`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ember.graph import Node
from ember.graph.ops.while_loop import WHILE_LOOP

from .blocks import BlockPlan
from .lowering import LoweringContext, StepFn, lowers
from .runtime import Runtime


@lowers(WHILE_LOOP)
def _while_loop(ctx: LoweringContext, node: Node) -> StepFn:
    carried, predicate, body = node.attrs["carried"], node.attrs["predicate"], node.attrs["body"]
    holds, step = BlockPlan(predicate, ctx.debug_print), BlockPlan(body, ctx.debug_print)
    seen = carried + len(predicate.captured)

    def run(rt: Runtime, slot: int, *inputs: Any) -> Any:
        values = list(inputs[:carried])
        condition, captured = inputs[carried:seen], inputs[seen:]
        while bool(np.asarray(holds(rt, [*values, *condition])[0])):
            values = step(rt, [*values, *captured])
        return values[0] if carried == 1 else tuple(values)

    return run
