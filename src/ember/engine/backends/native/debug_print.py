"""`print`: the value's array handed to the session's print options as the step runs."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.debug_print import PRINT

from .lowering import TOKEN, LoweringContext, StepFn, lowers
from .runtime import Runtime


@lowers(PRINT)
def _print(ctx: LoweringContext, node: Node) -> StepFn:
    label, text, options = node.attrs["label"], node.attrs["text"], ctx.debug_print

    def run(rt: Runtime, slot: int, *value: np.ndarray) -> np.ndarray:
        if options is not None:
            options.emit(label, text if text is not None else np.asarray(value[0]))
        return TOKEN

    return run
