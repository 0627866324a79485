"""Native lowering of `repeat_interleave`: numpy's `repeat`, the counts checked first."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.repeat_interleave import REPEAT_INTERLEAVE, repeats_error

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_repeat_interleave"]


@lowers(REPEAT_INTERLEAVE)
def lower_repeat_interleave(ctx: LoweringContext, node: Node) -> StepFn:
    """Inputs past the counts only order the node after those that bind `out_dim`."""
    axis = node.attrs["axis"]
    if "repeats" in node.attrs:
        repeats = node.attrs["repeats"]
        return lambda rt, slot, x: np.repeat(x, repeats, axis)
    out_dim = node.attrs["out_dim"]

    def run(rt, slot, x, counts, *binders):
        size, expected = x.shape[axis], out_dim.evaluate(rt.bindings)
        negative = bool((counts < 0).any())  # before one count meets an empty axis
        counts = np.broadcast_to(counts, (size,)) if counts.size == 1 else counts  # one for all
        if counts.shape[0] != size:
            raise repeats_error(0, expected, counts.shape[0], size)
        counts = counts.astype(np.int64)  # a uint64 count past int64 turns negative
        past = counts.sum(dtype=np.float64) >= 2.0**62  # an int64 sum would wrap
        total = -1 if negative or past or (counts < 0).any() else int(counts.sum())
        if total != expected:
            raise repeats_error(total, expected)
        return np.repeat(x, counts, axis)

    return run
