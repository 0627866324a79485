"""XLA lowering of `embedding_bag_collection`: each value's bag found by a sorted search of the
lengths' running sum, then per feature its rows taken (and decoded), masked to the values that
feature owns, and pooled by segment sums and maxima under jit; the features' results are
concatenated.

Bad lengths and out-of-range ids are flagged inside the jitted function and raised on the host
(as `Check`s), before the executable hands any result back."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ember.graph import Node
from ember.graph.ops.embedding_bag_collection import (
    EMBEDDING_BAG_COLLECTION,
    LENGTHS_NEGATIVE,
    LENGTHS_SUM,
    lengths_error,
)

from .decode import decode
from .gather import _index_dtype, clamped, valid_ids
from .lowering import _MAX_RANK, Check, LoweringContext, lowers

__all__ = ["lower_embedding_bag_collection"]


@dataclass(frozen=True)
class _LengthsCheck(Check):
    """Bad lengths: `row` is (position or -1, problem, the length or the sum, the number of
    values), padded to a check's length; `batch` is the lengths' second dim."""

    batch: int = 1

    def error(self, row: np.ndarray) -> ValueError:
        position, problem, value, other = (int(v) for v in row[:4])
        return lengths_error(problem, position, value, (0, self.batch) if problem == 0 else other)


@lowers(EMBEDDING_BAG_COLLECTION)
def lower_embedding_bag_collection(
    ctx: LoweringContext, node: Node, *inputs: jax.Array
) -> jax.Array:
    attrs = node.attrs
    count = len(attrs["modes"])
    tables, values, lengths = inputs[:count], inputs[count], inputs[count + 1]
    flat = values.reshape(-1)
    batch = lengths.shape[1]
    wide = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    sizes = lengths.reshape(-1).astype(wide)
    _check_lengths(ctx, sizes, flat.size, batch)
    ends = jnp.cumsum(sizes)
    bag = jnp.searchsorted(ends, jnp.arange(flat.size, dtype=wide), side="right")
    feature_of, sample = bag // max(batch, 1), bag % max(batch, 1)
    pieces = []
    for f, t in enumerate(attrs["features"]):
        if flat.size == 0:  # no rows to take (decoders need one)
            pieces.append(jnp.zeros((batch, attrs["widths"][f]), jnp.float32))
            continue
        mine = feature_of == f
        pieces.append(
            _pool_feature(
                ctx,
                node,
                tables[t],
                values,
                flat,
                mine,
                sample,
                batch,
                attrs["modes"][t],
                attrs["padding_idx"][t],
                attrs["out_of_range"][t],
                attrs["encodings"][t],
            )
        )
    return jnp.concatenate(pieces, axis=1).astype(node.result_types[0].dtype.to_numpy())


def _pool_feature(
    ctx, node, table, values, flat, mine, sample, batch, mode, padding_idx, out_of_range, encoding
) -> jax.Array:
    """One feature's `(batch, width)` float32: the values it owns pooled per sample."""
    vocab = table.shape[0]
    valid = valid_ids(flat, vocab, allow_negative=False)
    if out_of_range == "error":
        ctx.check(node, values, mine & ~valid, vocab, "error", 0)
    index = clamped(flat, vocab) if out_of_range == "clamp" else flat
    rows = jnp.take(table, index.astype(_index_dtype(vocab)), axis=0, mode="clip")
    rows = (decode(encoding.name, rows) if encoding else rows).astype(jnp.float32)
    if out_of_range == "zero":
        rows = jnp.where(valid[:, None], rows, 0.0)
    keep = mine
    if padding_idx is not None and padding_idx <= np.iinfo(flat.dtype).max:
        keep = keep & (flat != jnp.asarray(padding_idx, flat.dtype))
    segments = jnp.where(mine, sample, batch).astype(jnp.int32)  # others fall past the end
    counts = jax.ops.segment_sum(keep.astype(jnp.int32), segments, num_segments=batch)
    if mode == "max":
        pooled = jax.ops.segment_max(
            jnp.where(keep[:, None], rows, -jnp.inf), segments, num_segments=batch
        )
        return jnp.where(counts[:, None] > 0, pooled, 0.0)
    pooled = jax.ops.segment_sum(jnp.where(keep[:, None], rows, 0.0), segments, num_segments=batch)
    if mode == "mean":
        pooled = pooled / jnp.maximum(counts, 1).astype(jnp.float32)[:, None]
    return pooled


def _check_lengths(ctx: LoweringContext, sizes: jax.Array, values: int, batch: int) -> None:
    """Record a check that lengths are non-negative and sum to the number of values."""
    wide = sizes.dtype
    negative = sizes < 0
    at = jnp.argmax(negative) if sizes.size else jnp.asarray(0)
    total = sizes.sum()
    none = jnp.asarray(-1, wide)
    row = jnp.where(
        negative.any(),
        jnp.stack(
            [
                at.astype(wide),
                jnp.asarray(LENGTHS_NEGATIVE, wide),
                sizes[at] if sizes.size else none,
                jnp.asarray(values, wide),
            ]
        ),
        jnp.stack(
            [
                jnp.where(total != values, 0, -1).astype(wide),
                jnp.asarray(LENGTHS_SUM, wide),
                total,
                jnp.asarray(values, wide),
            ]
        ),
    )
    padded = jnp.concatenate([row, jnp.zeros(_MAX_RANK, wide)])
    ctx.checks.append(_LengthsCheck(padded, "error", 0, np.dtype(wide), batch))
