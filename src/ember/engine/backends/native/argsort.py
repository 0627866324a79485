"""Native lowering of `argsort`: a stable sort of integer keys in the values' order (the
complements for descending, the same order reversed), so that ties keep their index order."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.argsort import ARGSORT

from .lowering import LoweringContext, StepFn, lowers
from .top_k import order_keys

__all__ = ["lower_argsort"]


@lowers(ARGSORT)
def lower_argsort(ctx: LoweringContext, node: Node) -> StepFn:
    ascending = node.attrs["ascending"]

    def run(rt, slot, x):
        keys = x if x.dtype.kind in "iu" else order_keys(x)
        return np.argsort(keys if ascending else ~keys, kind="stable").astype(np.int64)

    return run
