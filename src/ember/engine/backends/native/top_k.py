"""Native lowering of `top_k`, exact at ties: each value becomes a 64-bit key unique to it (its
order as an int32, then its index reversed), so that a partition and a sort of the keys leave
no tie to chance, on the k-th boundary included."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.top_k import TOP_K

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_top_k", "order_keys"]


@lowers(TOP_K)
def lower_top_k(ctx: LoweringContext, node: Node) -> StepFn:
    k, axis = node.attrs["k"], node.attrs["axis"]

    def run(rt, slot, x):
        moved = np.moveaxis(x, axis, -1)
        size = moved.shape[-1]
        if k > size:
            raise ValueError(f"top_k: k={k} is larger than axis {axis} of {x.shape}")
        rows = moved.reshape(-1, size)
        keys = (order_keys(rows).astype(np.int64) << 32) + (0xFFFF_FFFF - np.arange(size))
        if k < size:
            kept = np.argpartition(keys, size - k, axis=-1)[:, size - k :]
        else:
            kept = np.broadcast_to(np.arange(size), keys.shape)
        kept_keys = np.take_along_axis(keys, kept, axis=-1)
        ids = np.take_along_axis(kept, np.argsort(kept_keys, axis=-1)[:, ::-1], axis=-1)
        values = np.take_along_axis(rows, ids, axis=-1)
        shape = (*moved.shape[:-1], k)
        return (
            np.moveaxis(values.reshape(shape), -1, axis),
            np.moveaxis(ids.reshape(shape), -1, axis),
        )

    return run


def order_keys(values: np.ndarray) -> np.ndarray:
    """int32 keys in the order of float `values` (float32 or narrower): -0.0 equal to 0.0, and
    every NaN equal to every other and above +inf."""
    wide = values.astype(np.float32)
    wide = np.where(wide == 0, np.float32(0.0), wide)
    bits = wide.view(np.int32)
    keys = bits ^ ((bits >> 31) & np.int32(0x7FFF_FFFF))
    return np.where(np.isnan(wide), np.int32(0x7FFF_FFFF), keys)
