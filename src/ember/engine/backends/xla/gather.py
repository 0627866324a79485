"""XLA lowering of `gather`: `jnp.take` with the ids' `out_of_range` rule applied in the ids'
own type (huge unsigned ids never wrap into range), and bad ids flagged for the host to raise
rather than clamped silently."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ember.graph import Node
from ember.graph.ops.gather import GATHER

from .lowering import LoweringContext, lowers

__all__ = ["lower_gather", "valid_ids"]


def valid_ids(ids: jax.Array, size: int, allow_negative: bool) -> jax.Array:
    """Where `ids` lie in `[0, size)` (or `[-size, size)`), compared without overflow."""
    info = np.iinfo(ids.dtype)
    inside = ids < size if size <= info.max else jnp.ones(ids.shape, bool)
    if info.min < 0:
        low = -size if allow_negative else 0
        inside &= ids >= max(low, int(info.min))
    return inside


def clamped(ids: jax.Array, size: int) -> jax.Array:
    """Each id moved to the nearest of `[0, size)`."""
    top = min(size - 1, int(np.iinfo(ids.dtype).max))
    return jnp.clip(ids, 0, top) if np.iinfo(ids.dtype).min < 0 else jnp.minimum(ids, top)


@lowers(GATHER)
def lower_gather(ctx: LoweringContext, node: Node, table: jax.Array, ids: jax.Array) -> jax.Array:
    axis, out_of_range = node.attrs["axis"], node.attrs["out_of_range"]
    size = table.shape[axis]
    if size == 0:  # every id is outside an empty axis (a shard of fewer rows than devices)
        if out_of_range in ("error", "wrap", "clamp"):  # clamp: no slice is near
            ctx.check(node, ids, jnp.ones(ids.shape, bool), size, out_of_range, axis)
        shape = (*table.shape[:axis], *ids.shape, *table.shape[axis + 1 :])
        return jnp.zeros(shape, table.dtype)
    if out_of_range == "clamp":
        index = clamped(ids, max(size, 1))
    else:
        valid = valid_ids(ids, size, allow_negative=out_of_range == "wrap")
        if out_of_range in ("error", "wrap"):
            ctx.check(node, ids, ~valid, size, out_of_range, axis)
        index = ids  # a bad id reads a clipped row that the flag or the mask then discards
        if out_of_range == "wrap" and np.iinfo(ids.dtype).min < 0:
            index = jnp.where(ids < 0, ids + size, ids)
    rows = jnp.take(table, index.astype(_index_dtype(size)), axis=axis, mode="clip")
    if out_of_range == "zero":
        mask = valid.reshape((1,) * axis + ids.shape + (1,) * (table.ndim - axis - 1))
        rows = jnp.where(mask, rows, jnp.zeros((), rows.dtype))
    return rows


def _index_dtype(size: int) -> type:
    """int32 row indices; int64 (which needs x64) only for tables of 2**31 rows or more."""
    return jnp.int32 if size < 2**31 else jnp.int64
