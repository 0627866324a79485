"""Native lowering of `embedding_bag`: every argument checked on the host before anything is
written, then the bag kernel. A dense table is pooled in place; a quantized one is pooled as
a collection of one feature (`BagCollection`: rows decoded as they are read), or, with
per-sample weights, has each chunk of bags' rows decoded by `RowLookup` into a float32 buffer
of at most `CHUNK_BYTES` (or one bag's rows, when a bag is larger), then pooled from there."""

from __future__ import annotations

import numpy as np

from ember.errors import out_of_range_error, out_of_range_ids
from ember.graph import Node
from ember.graph.ops.embedding_bag import EMBEDDING_BAG

from .kernels.bag import KIND_BF16, KIND_F16, KIND_F32, POOLS, BagPool, offset_bounds
from .kernels.bag_collection import BagCollection, TableSpec
from .kernels.gather import PARALLEL_MIN_BYTES
from .kernels.lookup import RowLookup
from .kernels.out_of_range import CLAMP as MODE_CLAMP
from .kernels.out_of_range import ERROR
from .kernels.out_of_range import ZERO as MODE_ZERO
from .lowering import LoweringContext, StepFn, lowers

__all__ = ["CHUNK_BYTES", "lower_embedding_bag"]

CHUNK_BYTES = 1 << 20
"""Decoded rows of a quantized table held at once: small enough to stay in a core's L2."""

_KINDS = {"float32": KIND_F32, "bfloat16": KIND_BF16, "float16": KIND_F16}


@lowers(EMBEDDING_BAG)
def lower_embedding_bag(ctx: LoweringContext, node: Node) -> StepFn:
    attrs = node.attrs
    pool, padding_idx = POOLS[attrs["mode"]], attrs["padding_idx"]
    out_of_range, include_last = attrs["out_of_range"], attrs["include_last_offset"]
    has_offsets, has_weights = attrs["has_offsets"], attrs["has_weights"]
    mode = MODE_ZERO if out_of_range == "zero" else MODE_CLAMP  # "error" is checked first
    out_dtype = node.result_types[0].dtype.to_numpy()
    ids_dtype = node.inputs[1].dtype.to_numpy()
    encoding = attrs["encoding"]
    if encoding is None:
        kind = _KINDS[node.inputs[0].dtype.value]
        bags = BagPool(ids_dtype, np.float32 if kind == KIND_F32 else np.uint16)
    elif has_weights:
        kind, bags = KIND_F32, BagPool(ids_dtype, np.float32)
        rows = RowLookup(encoding.name, ids_dtype, np.dtype(np.float32))
    else:
        width = int(node.result_types[0].shape[1])
        fused = _fused_bags(encoding.name, width, pool, padding_idx, out_of_range, ids_dtype)

    def run(rt, slot, table, ids, *rest):
        offsets = rest[0] if has_offsets else None
        weights = rest[-1] if has_weights else None
        flat = np.ascontiguousarray(ids.reshape(-1))  # the kernels read ids by address
        if ids.ndim == 2:
            count, length = ids.shape
            starts = np.arange(count, dtype=np.int64) * length
            ends = starts + length
        else:
            starts, ends = offset_bounds(offsets, flat.size, include_last)
        if weights is not None:
            if weights.shape != ids.shape:
                raise ValueError(
                    f"embedding_bag: per_sample_weights must have the ids' shape {ids.shape}, "
                    f"got {weights.shape}"
                )
            weights = np.ascontiguousarray(weights.reshape(-1), np.float32)
        vocab = table.shape[0]
        unread = flat.size - (int(ends[-1]) if ends.size else 0)  # ids after the last bag
        if out_of_range == "error" and encoding is not None and (has_weights or unread):
            out_of_range_ids(ids, vocab, "error")  # others are checked by the kernels
        table = np.ascontiguousarray(table)  # weights are bound contiguous; inputs may not be
        hidden = table.shape[1] if encoding is None else encoding.hidden_size(table.shape[1])
        out = rt.empty(slot, (starts.size, hidden), out_dtype)
        pooled = out if out_dtype == np.float32 else np.empty(out.shape, np.float32)
        parallel = flat.size * hidden * 4 >= PARALLEL_MIN_BYTES
        if encoding is None:
            source = table if kind == KIND_F32 else table.view(np.uint16)
            bad = bags(source, kind, flat, False, starts, ends, weights, pool, padding_idx,
                       mode, pooled, parallel, check=out_of_range == "error")  # fmt: skip
            if bad >= 0:
                raise out_of_range_error(ids.shape, bad, flat[bad].item(), vocab, "error")
        elif has_weights:
            _pool_decoded(rows, bags, table, flat, starts, ends, weights, pool, padding_idx,
                          mode, pooled, hidden, parallel)  # fmt: skip
        else:  # bags follow each other: one start per bag, then the last one's end
            bounds = np.append(starts, ends[-1:]) if starts.size else np.zeros(1, np.int64)
            bad = fused([table], flat, bounds, pooled, parallel, check=out_of_range == "error")
            if bad >= 0:
                raise out_of_range_error(ids.shape, bad, flat[bad].item(), vocab, "error")
        if pooled is not out:
            out[...] = pooled  # rounded once, to the table's dtype
        return out

    return run


def _fused_bags(fmt, width, pool, padding_idx, out_of_range, ids_dtype) -> BagCollection:
    """A quantized table's bags as a collection of one feature: each row decoded as it is
    read (in registers, for the formats `ROWS_SUMMED` names), nothing buffered."""
    code = {"error": ERROR, "zero": MODE_ZERO, "clamp": MODE_CLAMP}[out_of_range]
    pad = -1 if padding_idx is None else padding_idx
    feature = np.array([[0, 0, pool, pad, code, 0, width]], np.int64)
    return BagCollection([TableSpec(fmt)], feature, ids_dtype)


def _pool_decoded(rows, bags, table, flat, starts, ends, weights, pool, padding_idx, mode, out,
                  hidden, parallel):  # fmt: skip
    """Bags in chunks: each chunk's rows decoded into one buffer, then pooled from it."""
    per_chunk = max(CHUNK_BYTES // (hidden * 4), 1)
    longest = int((ends - starts).max(initial=0))
    buffer = np.empty((max(min(per_chunk, flat.size), longest), hidden), np.float32)
    first = 0
    while first < starts.size:
        last = max(int(np.searchsorted(ends, starts[first] + per_chunk, "right")), first + 1)
        low, high = int(starts[first]), int(ends[last - 1])
        decoded = buffer[: high - low]
        rows(table, flat[low:high], 0, mode, decoded, parallel)
        weights_here = None if weights is None else weights[low:high]
        bags(decoded, KIND_F32, flat[low:high], True, starts[first:last] - low,
             ends[first:last] - low, weights_here, pool, padding_idx, mode, out[first:last],
             parallel)  # fmt: skip
        first = last
