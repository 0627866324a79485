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
from ember.graph.ops.embedding_bag import check_weights_shape
from ember.graph.ops.embedding_bag_collection import (
    EMBEDDING_BAG_COLLECTION,
    LENGTHS_LONG,
    LENGTHS_NEGATIVE,
    LENGTHS_SUM,
    lengths_error,
)

from .decode import decode
from .elementwise import divide_rounded_once
from .gather import _index_dtype, clamped, valid_ids
from .lowering import _MAX_RANK, Check, LoweringContext, lowers
from .segment_maximum import segment_maximum

__all__ = ["lower_embedding_bag_collection"]


@dataclass(frozen=True)
class _LengthsCheck(Check):
    """Bad lengths: `row` is (position or -1, problem, the bad length's bits or the sum (-1:
    past the sums' type), the number of values), padded to a check's length; `dtype` is the
    lengths' and `batch` their second dim."""

    batch: int = 1

    def error(self, row: np.ndarray) -> ValueError:
        position, problem, value, values = (int(v) for v in row[:4])
        if problem == LENGTHS_SUM:
            known = None if value < 0 else value
        else:
            bits = np.array(value, np.int64)
            known = bits.view(np.uint64) if self.dtype == np.uint64 else bits.astype(self.dtype)
            known = known.item()
        return lengths_error(problem, position, known, values, self.batch)


@lowers(EMBEDDING_BAG_COLLECTION)
def lower_embedding_bag_collection(
    ctx: LoweringContext, node: Node, *inputs: jax.Array
) -> jax.Array:
    attrs = node.attrs
    count = len(attrs["modes"])
    tables, values, lengths = inputs[:count], inputs[count], inputs[count + 1]
    flat = values.reshape(-1)
    weights = None
    if attrs["has_weights"]:
        check_weights_shape("embedding_bag_collection", inputs[-1].shape, values.shape)
        weights = inputs[-1].reshape(-1).astype(jnp.float32)
    batch = lengths.shape[1]
    wide = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    ends = _checked_ends(ctx, lengths.reshape(-1), wide, flat.size, batch)
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
                weights,
            )
        )
    return jnp.concatenate(pieces, axis=1).astype(node.result_types[0].dtype.to_numpy())


def _pool_feature(
    ctx,
    node,
    table,
    values,
    flat,
    mine,
    sample,
    batch,
    mode,
    padding_idx,
    out_of_range,
    encoding,
    weights,
) -> jax.Array:
    """One feature's `(batch, width)` float32: the values it owns pooled per sample, each row
    times its weight where there are `weights`."""
    vocab = table.shape[0]
    valid = valid_ids(flat, vocab, allow_negative=False)
    if out_of_range == "error":
        ctx.check(node, values, mine & ~valid, vocab, "error", 0)
    index = clamped(flat, vocab) if out_of_range == "clamp" else flat
    rows = jnp.take(table, index.astype(_index_dtype(vocab)), axis=0, mode="clip")
    rows = (decode(encoding.name, rows) if encoding else rows).astype(jnp.float32)
    if weights is not None:
        rows = rows * weights[:, None]
    if out_of_range == "zero":  # an id outside adds nothing, whatever its weight
        rows = jnp.where(valid[:, None], rows, 0.0)
    keep = mine
    if padding_idx is not None and padding_idx <= np.iinfo(flat.dtype).max:
        keep = keep & (flat != jnp.asarray(padding_idx, flat.dtype))
    segments = jnp.where(mine, sample, batch).astype(jnp.int32)  # others fall past the end
    counts = jax.ops.segment_sum(keep.astype(jnp.int32), segments, num_segments=batch)
    if mode == "max":
        pooled = segment_maximum(
            jnp.where(keep[:, None], rows, -jnp.inf), segments, num_segments=batch
        )
        return jnp.where(counts[:, None] > 0, pooled, 0.0)
    pooled = jax.ops.segment_sum(jnp.where(keep[:, None], rows, 0.0), segments, num_segments=batch)
    if mode == "mean":
        pooled = divide_rounded_once(pooled, jnp.maximum(counts, 1).astype(jnp.float32)[:, None])
    return pooled


def _checked_ends(
    ctx: LoweringContext, raw: jax.Array, wide: jnp.dtype, values: int, batch: int
) -> jax.Array:
    """Where each bag ends in the values (the lengths' running sum, in `wide`), with a check
    recorded that every length lies in `[0, values]` (compared in the lengths' own type, so
    that no unsigned length turns negative) and that they sum to `values` without wrapping."""
    none = jnp.zeros(raw.shape, bool)
    signed = jnp.issubdtype(raw.dtype, jnp.signedinteger)
    fits = values <= jnp.iinfo(raw.dtype).max
    negative = raw < 0 if signed else none
    bad = negative | (raw > jnp.asarray(values, raw.dtype) if fits else none)
    sizes = raw.astype(wide)
    ends = jnp.cumsum(sizes)
    empty = raw.size == 0
    at = jnp.asarray(0) if empty else jnp.argmax(bad)
    total = jnp.asarray(0, wide) if empty else ends[-1]
    wrapped = jnp.asarray(False) if empty else (ends[1:] < ends[:-1]).any()
    row = jnp.where(
        bad.any(),
        jnp.stack(
            [
                at.astype(wide),
                jnp.where(negative[at], LENGTHS_NEGATIVE, LENGTHS_LONG).astype(wide)
                if not empty
                else jnp.asarray(LENGTHS_LONG, wide),
                jnp.asarray(-1, wide) if empty else sizes[at],
                jnp.asarray(values, wide),
            ]
        ),
        jnp.stack(
            [
                jnp.where(wrapped | (total != values), 0, -1).astype(wide),
                jnp.asarray(LENGTHS_SUM, wide),
                jnp.where(wrapped, -1, total).astype(wide),
                jnp.asarray(values, wide),
            ]
        ),
    )
    padded = jnp.concatenate([row, jnp.zeros(_MAX_RANK, wide)])
    ctx.checks.append(_LengthsCheck(padded, "error", 0, np.dtype(raw.dtype), batch))
    return ends
