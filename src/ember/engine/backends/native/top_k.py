"""Native lowering of `top_k`, exact at ties: values become int32 keys in their order, a
partition finds each row's k-th largest key, and the few keys at or above it are sorted by key,
then by index, so that no tie is left to chance (on the k-th boundary included). `bottom_k`
ranks the keys' complements: the same order reversed, ties still to the lower index."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.top_k import TOP_K, k_beyond_axis_error

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_top_k", "order_keys", "top_k_ids"]


@lowers(TOP_K)
def lower_top_k(ctx: LoweringContext, node: Node) -> StepFn:
    k, axis, largest = node.attrs["k"], node.attrs["axis"], node.attrs["largest"]

    def run(rt, slot, x):
        moved = np.moveaxis(x, axis, -1)
        size = moved.shape[-1]
        if k > size:
            raise k_beyond_axis_error(k, axis, x.shape, node.attrs["largest"])
        rows = moved.reshape(-1, size)
        keys = order_keys(rows)
        ids = top_k_ids(keys if largest else ~keys, k)
        values = np.take_along_axis(rows, ids, axis=-1)
        shape = (*moved.shape[:-1], k)
        return (
            np.moveaxis(values.reshape(shape), -1, axis),
            np.moveaxis(ids.reshape(shape), -1, axis),
        )

    return run


def top_k_ids(keys: np.ndarray, k: int) -> np.ndarray:
    """int64 indices of each row's `k` largest `keys`, largest first, the lower index first
    among equal keys."""
    size = keys.shape[-1]
    threshold = np.partition(keys, size - k, axis=-1)[:, size - k]
    ids = np.empty((keys.shape[0], k), np.int64)
    for row, (row_keys, kth) in enumerate(zip(keys, threshold, strict=True)):
        candidates = np.flatnonzero(row_keys >= kth)  # k or more: all that can be kept
        order = np.lexsort((candidates, -row_keys[candidates].astype(np.int64)))
        ids[row] = candidates[order[:k]]
    return ids


def order_keys(values: np.ndarray) -> np.ndarray:
    """Integer keys in the order of float `values`: int32 for float32 and narrower (widened
    exactly), int64 for float64. -0.0 is equal to 0.0, and every NaN equal to every other and
    above +inf."""
    if values.dtype == np.float64:
        wide, ints, shift = values, np.int64, 63
    else:
        wide, ints, shift = values.astype(np.float32), np.int32, 31
    largest = np.iinfo(ints).max
    wide = np.where(wide == 0, wide.dtype.type(0.0), wide)
    bits = wide.view(ints)
    keys = bits ^ ((bits >> shift) & ints(largest))
    return np.where(np.isnan(wide), ints(largest), keys)
