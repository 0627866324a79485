"""Native lowering of `matmul`. A float32 `lhs` times a transposed table (`hidden @ table.T`,
the LM head) runs the `rowdot` kernel, which streams the table's rows as they are stored;
other products go through numpy, narrow floats widened to float32 first."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.matmul import MATMUL

from .kernels.gather import PARALLEL_MIN_BYTES
from .kernels.rowdot import TABLE_DTYPES, rowdot
from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_matmul"]

_FLOAT32 = np.dtype(np.float32)


@lowers(MATMUL)
def lower_matmul(ctx: LoweringContext, node: Node) -> StepFn:
    dtype = node.result_types[0].dtype.to_numpy()

    def run(rt, slot, lhs, rhs):
        if _is_transposed_table(lhs, rhs):
            table = rhs.T  # C-contiguous (vocab, width): the rows the kernel streams
            out = rt.empty(slot, (*lhs.shape[:-1], table.shape[0]), _FLOAT32)
            hidden = np.ascontiguousarray(lhs).reshape(-1, table.shape[1])
            logits = out.reshape(hidden.shape[0], table.shape[0])
            rowdot(hidden, table, logits, parallel=table.nbytes >= PARALLEL_MIN_BYTES)
            return out
        return _numpy_matmul(lhs, rhs, dtype)

    return run


def _is_transposed_table(lhs: np.ndarray, rhs: np.ndarray) -> bool:
    return (
        lhs.dtype == _FLOAT32
        and rhs.ndim == 2
        and rhs.dtype in TABLE_DTYPES
        and rhs.T.flags.c_contiguous
        and lhs.ndim >= 1
        and rhs.shape[0] > 0  # no products to stream: numpy's empty sums are zeros
    )


def _numpy_matmul(lhs: np.ndarray, rhs: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """numpy's product. Floats narrower than float32 are multiplied in float32 (numpy has no
    fast path for them) and the result is rounded once to its dtype."""
    if (lhs.dtype == rhs.dtype == dtype and dtype.itemsize >= 4) or dtype.kind in "iub":
        return np.matmul(lhs, rhs)
    product = np.matmul(lhs.astype(_FLOAT32, copy=False), rhs.astype(_FLOAT32, copy=False))
    return product.astype(dtype, copy=False)
