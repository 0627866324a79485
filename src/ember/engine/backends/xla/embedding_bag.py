"""XLA lowering of `embedding_bag`: the ids' rows taken (and decoded, for a quantized table),
then pooled by segment sums and maxima under jit. Each id's bag is found by a sorted search of
the offsets; ids after the last bag fall in no segment and are dropped.

Bad offsets and out-of-range ids are flagged inside the jitted function and raised on the host
(as `Check`s), before the executable hands any result back."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ember.graph import Node
from ember.graph.ops.embedding_bag import (
    EMBEDDING_BAG,
    NO_OFFSETS,
    OFFSET_DECREASES,
    OFFSET_NOT_ZERO,
    OFFSET_PAST_IDS,
    check_weights_shape,
    offsets_error,
)

from .decode import decode
from .elementwise import divide_rounded_once
from .gather import _index_dtype, clamped, valid_ids
from .lowering import _MAX_RANK, Check, LoweringContext, lowers
from .segment_maximum import segment_maximum

__all__ = ["lower_embedding_bag"]


@dataclass(frozen=True)
class _OffsetsCheck(Check):
    """Bad offsets: `row` is (position or -1, problem, the offset, the offset before it or the
    number of ids), padded to a check's length."""

    def error(self, row: np.ndarray) -> ValueError:
        position, problem, value, other = (int(v) for v in row[:4])
        if self.dtype == np.uint64:
            value = int(np.array(value, np.int64).view(np.uint64))
            other = int(np.array(other, np.int64).view(np.uint64))
        return offsets_error(problem, position, value, other)


@lowers(EMBEDDING_BAG)
def lower_embedding_bag(
    ctx: LoweringContext, node: Node, table: jax.Array, ids: jax.Array, *rest: jax.Array
) -> jax.Array:
    attrs = node.attrs
    offsets = rest[0] if attrs["has_offsets"] else None
    weights = rest[-1] if attrs["has_weights"] else None
    mode, padding_idx, out_of_range = attrs["mode"], attrs["padding_idx"], attrs["out_of_range"]
    flat = ids.reshape(-1)
    if ids.ndim == 2:
        count = ids.shape[0]
        segments = jnp.repeat(jnp.arange(count, dtype=jnp.int32), ids.shape[1])
    else:
        count, segments = _segments(ctx, node, offsets, flat.size, attrs["include_last_offset"])
    if weights is not None:
        check_weights_shape("embedding_bag", weights.shape, ids.shape)
    vocab = table.shape[0]
    valid = valid_ids(flat, vocab, allow_negative=False)
    if out_of_range == "error":
        ctx.check(node, ids, ~valid.reshape(ids.shape), vocab, "error", 0)
    index = clamped(flat, vocab) if out_of_range == "clamp" else flat
    rows = jnp.take(table, index.astype(_index_dtype(vocab)), axis=0, mode="clip")
    encoding = attrs["encoding"]
    rows = (decode(encoding.name, rows) if encoding else rows).astype(jnp.float32)
    if weights is not None:
        rows = rows * weights.reshape(-1).astype(jnp.float32)[:, None]
    if out_of_range == "zero":  # an id outside adds nothing, whatever its weight
        rows = jnp.where(valid[:, None], rows, 0.0)
    keep = jnp.ones(flat.shape, bool)
    if padding_idx is not None and padding_idx <= np.iinfo(flat.dtype).max:
        keep = flat != jnp.asarray(padding_idx, flat.dtype)
    out_dtype = node.result_types[0].dtype.to_numpy()
    if count == 0:
        return jnp.zeros((0, rows.shape[1]), out_dtype)
    sorted_ = {"num_segments": count, "indices_are_sorted": True}
    counts = jax.ops.segment_sum(keep.astype(jnp.int32), segments, **sorted_)
    if mode == "max":
        pooled = segment_maximum(jnp.where(keep[:, None], rows, -jnp.inf), segments, **sorted_)
        pooled = jnp.where(counts[:, None] > 0, pooled, 0.0)
    else:
        pooled = jax.ops.segment_sum(jnp.where(keep[:, None], rows, 0.0), segments, **sorted_)
        if mode == "mean":
            pooled = divide_rounded_once(
                pooled, jnp.maximum(counts, 1).astype(jnp.float32)[:, None]
            )
    return pooled.astype(out_dtype)


def _segments(
    ctx: LoweringContext, node: Node, offsets: jax.Array, ids_count: int, include_last: bool
) -> tuple[int, jax.Array]:
    """(bags, each id's bag): ids after the last bag get the bag past the end."""
    if include_last and offsets.shape[0] == 0:
        raise offsets_error(NO_OFFSETS, 0, 0, ids_count)
    count = offsets.shape[0] - int(include_last)
    _check_offsets(ctx, node, offsets, ids_count)
    wide = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    positions = jnp.arange(ids_count, dtype=wide)
    if offsets.shape[0] == 0:
        return 0, jnp.zeros(ids_count, jnp.int32)
    starts = offsets.astype(wide)
    segments = jnp.searchsorted(starts, positions, side="right") - 1
    return count, segments.astype(jnp.int32)


def _check_offsets(ctx: LoweringContext, node: Node, offsets: jax.Array, ids_count: int) -> None:
    """Record a check that offsets start at 0, never decrease and stay within the ids."""
    if offsets.shape[0] == 0:
        return
    wide = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    info = np.iinfo(offsets.dtype)

    def bits(value: jax.Array) -> jax.Array:
        if value.dtype == jnp.uint64:
            return lax.bitcast_convert_type(value, jnp.int64)
        return value.astype(wide)

    first = offsets[0]
    drops = offsets[1:] < offsets[:-1]
    drop_at = jnp.argmax(drops) + 1 if drops.size else jnp.asarray(0)
    past = offsets > ids_count if ids_count <= info.max else jnp.zeros(offsets.shape, bool)
    past_at = jnp.argmax(past)
    none = jnp.asarray(-1, wide)
    row = jnp.where(
        first != 0,
        jnp.stack([jnp.asarray(0, wide), jnp.asarray(OFFSET_NOT_ZERO, wide), bits(first),
                   jnp.asarray(ids_count, wide)]),
        jnp.where(
            drops.any() if drops.size else False,
            jnp.stack([drop_at.astype(wide), jnp.asarray(OFFSET_DECREASES, wide),
                       bits(offsets[drop_at]), bits(offsets[drop_at - 1])]),
            jnp.stack([jnp.where(past.any(), past_at.astype(wide), none),
                       jnp.asarray(OFFSET_PAST_IDS, wide), bits(offsets[past_at]),
                       jnp.asarray(ids_count, wide)]),
        ),
    )  # fmt: skip
    padded = jnp.concatenate([row, jnp.zeros(_MAX_RANK, wide)])
    ctx.checks.append(_OffsetsCheck(padded, "error", 0, np.dtype(offsets.dtype)))
