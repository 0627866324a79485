"""Native lowerings of `allreduce_sum` (each device gets its own array holding the total) and
`reducescatter_sum` (each device its own copy of its run of the total)."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.allreduce import ALLREDUCE_SUM
from ember.graph.ops.reducescatter import REDUCESCATTER_SUM, run_bounds

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_allreduce_sum", "lower_reducescatter_sum"]


@lowers(ALLREDUCE_SUM)
def lower_allreduce_sum(ctx: LoweringContext, node: Node) -> StepFn:
    copies = len(node.result_types)

    def run(rt, slot, first, *rest):
        total = _total(rt.empty(slot, first.shape, first.dtype), first, rest)
        return total if copies == 1 else (total, *(total.copy() for _ in range(copies - 1)))

    return run


@lowers(REDUCESCATTER_SUM)
def lower_reducescatter_sum(ctx: LoweringContext, node: Node) -> StepFn:
    axis, n = node.attrs["axis"], len(node.result_types)

    def run(rt, slot, first, *rest):
        total = _total(np.empty_like(first), first, rest)
        runs = run_bounds(first.shape[axis], n)
        parts = tuple(
            np.ascontiguousarray(total[(slice(None),) * axis + (slice(a, b),)]) for a, b in runs
        )
        return parts[0] if n == 1 else parts

    return run


def _total(out: np.ndarray, first: np.ndarray, rest: tuple[np.ndarray, ...]) -> np.ndarray:
    """`first` and every array of `rest` added into `out`, in device order."""
    np.copyto(out, first)
    for partial in rest:
        np.add(out, partial, out=out)
    return out
