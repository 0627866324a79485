"""`call`: the subgraph's plan (`blocks.py`), run over the call's arguments and captures."""

from __future__ import annotations

from typing import Any

from ember.graph import Node
from ember.graph.ops.call import CALL

from .blocks import BlockPlan
from .lowering import TOKEN, LoweringContext, StepFn, lowers
from .runtime import Runtime


@lowers(CALL)
def _call(ctx: LoweringContext, node: Node) -> StepFn:
    subgraph = BlockPlan(node.attrs["graph"], ctx.debug_print)
    results = len(node.attrs["graph"].outputs)

    def run(rt: Runtime, slot: int, *inputs: Any) -> Any:
        values = subgraph(rt, inputs)
        if not results:
            return TOKEN  # the subgraph ran for its effects
        return values[0] if results == 1 else tuple(values)

    return run
