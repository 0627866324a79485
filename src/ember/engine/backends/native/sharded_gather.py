"""Native lowering of `sharded_gather`: CPU devices share host memory, so every shard writes
the rows it owns straight into one result (no zero-filled partials, no sum), and each device
gets a read-only view of it (or, scattering, its own slice). Ids are checked (or clamped) once
against the whole table."""

from __future__ import annotations

import math

import numpy as np

from ember.errors import out_of_range_ids, scatter_error
from ember.graph import Node
from ember.graph.ops.sharded_gather import SHARDED_GATHER

from .kernels.gather import PARALLEL_MIN_BYTES
from .kernels.lookup import RowLookup
from .kernels.out_of_range import SKIP as MODE_SKIP
from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_sharded_gather"]


@lowers(SHARDED_GATHER)
def lower_sharded_gather(ctx: LoweringContext, node: Node) -> StepFn:
    offsets, size, decode = node.attrs["offsets"], node.attrs["size"], ctx.decode
    out_of_range, scatter = node.attrs["out_of_range"], node.attrs["reduce"] == "scatter"
    copies = len(node.result_types)
    row_shape = tuple(int(d) for d in node.result_types[0].shape[len(node.inputs[-1].shape) :])
    if decode is not None:
        hidden = decode.encoding.hidden_size(row_shape[-1])
        row_shape, dtype = (*row_shape[:-1], hidden), decode.dtype.to_numpy()
    else:
        dtype = node.result_types[0].dtype.to_numpy()
    ids_dtype = node.inputs[-1].dtype.to_numpy()
    lookup = RowLookup(None if decode is None else decode.encoding.name, ids_dtype, dtype)

    def run(rt, slot, *inputs):
        *shards, ids = inputs
        flat = ids.reshape(-1)
        if out_of_range == "clamp":
            flat = np.clip(flat, 0, min(size - 1, int(np.iinfo(flat.dtype).max)))
            flat = flat.astype(ids.dtype, copy=False)
            bad = None
        else:
            bad = out_of_range_ids(ids, size, out_of_range)
        if scatter and (ids.ndim == 0 or ids.shape[0] % copies):
            raise ValueError(scatter_error(ids.shape, copies))
        shape = (*ids.shape, *row_shape)
        out = rt.pool.empty(shape, dtype) if scatter else rt.empty(slot, shape, dtype)
        rows = out.reshape(flat.size, math.prod(row_shape))
        parallel = out.nbytes >= PARALLEL_MIN_BYTES
        for shard, offset in zip(shards, offsets, strict=True):
            if shard.shape[0] == 0:
                continue
            shard = np.ascontiguousarray(shard).reshape(shard.shape[0], -1)
            target = rows if decode is not None else rows.view(shard.dtype)
            lookup(shard, flat, offset, MODE_SKIP, target, parallel)
        if bad is not None:  # "zero": the rows of ids no shard owns
            rows[bad.reshape(-1)] = 0
        if copies == 1:
            return out
        if scatter:  # disjoint slices of one buffer: each device's own
            part = ids.shape[0] // copies
            return tuple(out[k * part : (k + 1) * part] for k in range(copies))
        views = tuple(out.view() for _ in range(copies))
        for view in views:  # one buffer: no device's result may change another's
            view.flags.writeable = False
        return views

    return run
