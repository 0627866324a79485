"""Native lowering of `gather` (fused with a following dequantize and cast, when the compiler
found one): rows along axis 0 go through the numba kernels, other axes through numpy."""

from __future__ import annotations

import math

import numpy as np

from ember.errors import out_of_range_error, out_of_range_ids
from ember.graph import Node
from ember.graph.ops.gather import GATHER

from .fast_lookup import FastLookup
from .kernels.gather import PARALLEL_MIN_BYTES
from .kernels.lookup import RowLookup
from .kernels.out_of_range import CLAMP as MODE_CLAMP
from .kernels.out_of_range import ERROR as MODE_ERROR
from .kernels.out_of_range import WRAP as MODE_WRAP
from .kernels.out_of_range import ZERO as MODE_ZERO
from .lowering import LoweringContext, StepFn, lowers

__all__ = ["KERNEL_MODES", "lower_gather"]

KERNEL_MODES = {"error": MODE_ERROR, "zero": MODE_ZERO, "clamp": MODE_CLAMP, "wrap": MODE_WRAP}
"""Each `out_of_range` as the kernels' mode."""


@lowers(GATHER)
def lower_gather(ctx: LoweringContext, node: Node) -> StepFn:
    out_of_range, decode = node.attrs["out_of_range"], ctx.decode
    mode = KERNEL_MODES[out_of_range]
    if node.attrs["axis"] != 0:
        return _lower_numpy_gather(node.attrs["axis"], out_of_range)
    ids_dtype = node.inputs[1].dtype.to_numpy()
    if decode is not None:
        out_dtype = decode.dtype.to_numpy()
        lookup = RowLookup(decode.encoding.name, ids_dtype, out_dtype)
        hidden_size = decode.encoding.hidden_size

        def run_decoded(rt, slot, table, ids):
            table = np.ascontiguousarray(table)  # weights are bound contiguous; inputs may not be
            hidden = hidden_size(table.shape[1])
            flat = ids.reshape(-1)
            out = rt.empty(slot, (*ids.shape, hidden), out_dtype)
            parallel = out.nbytes >= PARALLEL_MIN_BYTES
            bad = lookup(table, flat, 0, mode, out.reshape(flat.size, hidden), parallel)
            if bad >= 0:
                raise out_of_range_error(ids.shape, bad, flat[bad], table.shape[0], out_of_range)
            return out

        run_decoded.fast_lookup = lambda table, pool, num_threads: FastLookup.create(
            lookup,
            table,
            mode,
            out_of_range,
            (hidden_size(table.shape[1]),),
            out_dtype,
            ids_dtype,
            pool,
            num_threads,
        )
        return run_decoded

    lookup = RowLookup(None, ids_dtype, node.inputs[0].dtype.to_numpy())

    def run(rt, slot, table, ids):
        flat = ids.reshape(-1)
        table = np.ascontiguousarray(table)  # weights are bound contiguous; inputs may not be
        rows = table.reshape(table.shape[0], math.prod(table.shape[1:]))
        out = rt.empty(slot, (*ids.shape, *table.shape[1:]), table.dtype)
        parallel = out.nbytes >= PARALLEL_MIN_BYTES
        bad = lookup(rows, flat, 0, mode, out.reshape(flat.size, rows.shape[1]), parallel)
        if bad >= 0:
            raise out_of_range_error(ids.shape, bad, flat[bad], table.shape[0], out_of_range)
        return out

    run.fast_lookup = lambda table, pool, num_threads: FastLookup.create(
        lookup,
        table,
        mode,
        out_of_range,
        table.shape[1:],
        table.dtype,
        ids_dtype,
        pool,
        num_threads,
    )
    return run


def _lower_numpy_gather(axis: int, out_of_range: str) -> StepFn:
    def run(rt, slot, table, ids):
        size = table.shape[axis]
        if size == 0 and ids.size:  # every id is outside an empty axis
            if out_of_range == "zero":
                return np.zeros((*table.shape[:axis], *ids.shape, *table.shape[axis + 1 :]),
                                table.dtype)  # fmt: skip
            if out_of_range == "clamp":  # no slice is near: as "error"
                raise out_of_range_error(ids.shape, 0, ids.reshape(-1)[0].item(), 0, "clamp", axis)
        bad = out_of_range_ids(ids, size, out_of_range, axis)
        if bad is None:
            return np.take(table, ids.astype(np.int64), axis=axis)
        index = np.where(bad, 0, ids).astype(np.int64)
        if out_of_range == "clamp":
            index = np.where(bad, np.where(ids < 0, 0, size - 1), index) if size else index
        result = np.take(table, index, axis=axis)
        if out_of_range == "zero":
            mask = bad.reshape((1,) * axis + ids.shape + (1,) * (table.ndim - axis - 1))
            result = np.where(mask, np.zeros((), result.dtype), result)
        return result

    return run
