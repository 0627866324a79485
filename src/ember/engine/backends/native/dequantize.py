"""Native lowering of a `dequantize` the compiler could not fuse into a gather: every row of
its input goes through the fused kernel with ids 0..n-1.

After a gather that zeroes out-of-range ids' rows, an all-zero row takes an out-of-range id
under the kernel's zero policy, so it is +0.0 as the fused gather writes it (`reads_zeroed_rows`:
several formats decode zero bytes to -0.0)."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.dequantize import DEQUANTIZE, reads_zeroed_rows

from .kernels.gather import PARALLEL_MIN_BYTES
from .kernels.lookup import RowLookup
from .kernels.out_of_range import ERROR as MODE_ERROR
from .kernels.out_of_range import ZERO as MODE_ZERO
from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_dequantize"]


@lowers(DEQUANTIZE)
def lower_dequantize(ctx: LoweringContext, node: Node) -> StepFn:
    encoding = node.attrs["encoding"]
    dtype = node.result_types[0].dtype.to_numpy()
    lookup = RowLookup(encoding.name, np.dtype(np.int64), dtype)
    zeroed_rows_stay_zero = reads_zeroed_rows(node)

    def run(rt, slot, blocks):
        rows = np.ascontiguousarray(blocks.reshape(-1, blocks.shape[-1]))
        hidden = encoding.hidden_size(rows.shape[1])
        out = rt.empty(slot, (*blocks.shape[:-1], hidden), dtype)
        ids = np.arange(rows.shape[0], dtype=np.int64)
        mode = MODE_ERROR
        if zeroed_rows_stay_zero:
            ids[~rows.any(axis=1)] = rows.shape[0]
            mode = MODE_ZERO
        parallel = out.nbytes >= PARALLEL_MIN_BYTES
        lookup(rows, ids, 0, mode, out.reshape(-1, hidden), parallel)
        return out

    return run
