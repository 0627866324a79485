"""Native lowering of `sharded_top_k`: each shard's own top `min(k, rows)` candidates (the
`top_k` lowering's exact ranking, ids moved to the global vocabulary), then one merge of all
candidates by value, the lower global id first among equals. CPU devices share memory, so the
merge reads the candidates where they lie, and every device gets a read-only view of one
result."""

from __future__ import annotations

import math

import numpy as np

from ember.graph import Node
from ember.graph.ops.sharded_top_k import SHARDED_TOP_K

from .lowering import LoweringContext, StepFn, lowers
from .top_k import order_keys, top_k_ids

__all__ = ["lower_sharded_top_k", "merge_candidates"]


@lowers(SHARDED_TOP_K)
def lower_sharded_top_k(ctx: LoweringContext, node: Node) -> StepFn:
    k, offsets = node.attrs["k"], node.attrs["offsets"]

    def run(rt, slot, *shards):
        lead = shards[0].shape[:-1]
        values, ids = [], []
        for shard, offset in zip(shards, offsets, strict=True):
            rows = shard.reshape(math.prod(lead), shard.shape[-1])
            if rows.shape[1] == 0:
                continue
            local = _best_ids(rows, min(k, rows.shape[1]))
            values.append(np.take_along_axis(rows, local, axis=-1))
            ids.append(local + offset)
        best_values, best_ids = merge_candidates(np.concat(values, -1), np.concat(ids, -1), k)
        best_values, best_ids = best_values.reshape(*lead, k), best_ids.reshape(*lead, k)
        best_values.flags.writeable = best_ids.flags.writeable = False
        return tuple(a for _ in shards for a in (best_values.view(), best_ids.view()))

    return run


def _best_ids(rows: np.ndarray, k: int) -> np.ndarray:
    """Each row's `k` best ids, as the `top_k` lowering ranks them; for one, numpy's argmax
    (the first of equal values, the first NaN: the same id), without keys."""
    if k == 1:
        wide = rows.astype(np.float32) if rows.dtype.kind == "V" else rows
        return np.argmax(wide, axis=-1)[:, None]
    return top_k_ids(order_keys(rows), k)


def merge_candidates(values: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """The `k` best of each row's candidates: by value, largest first (NaN above +inf, -0.0
    equal to 0.0), the lower id first among equals."""
    keys = order_keys(values).astype(np.int64)
    order = np.lexsort((ids, -keys), axis=-1)[:, :k]
    return np.take_along_axis(values, order, -1), np.take_along_axis(ids, order, -1)
