"""Native lowering of `qmatmul`. Q4_K, Q6_K and Q8_0 tables go to `quantized_rowdot`, which
decodes each block in registers and dots it with every token while it is there. Other formats
are decoded a chunk of rows at a time into a small scratch buffer (`RowLookup`, bit for bit as
gguf decodes), and each chunk is dotted with every token by `rowdot`; either way the
dequantized table is never whole in memory.

Both kernels sum each dot product in one order fixed by the width alone, so a row's logit has
the same bits whichever chunk, tile or thread it falls in: the logits equal the dense head's
over the dequantized table, bit for bit. With ``int8_activations``, Q4_K and Q6_K go to
`int8_rowdot` (hidden states quantized to 8 bits, integer dot products) where the CPU has
AVX-512 VNNI; the other formats stay exact."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.qmatmul import QMATMUL

from .kernels.gather import PARALLEL_MIN_BYTES
from .kernels.int8_rowdot import INT8_FORMATS, int8_rowdot
from .kernels.lookup import RowLookup
from .kernels.out_of_range import ERROR as MODE_ERROR
from .kernels.quantized_rowdot import FUSED_FORMATS, quantized_rowdot
from .kernels.rowdot import rowdot
from .lowering import LoweringContext, StepFn, lowers

__all__ = ["CHUNK_ROWS", "lower_qmatmul"]

CHUNK_ROWS = 256
"""Table rows decoded at a time: 4 MiB of float32 at width 4096, small enough to stay in the
cache between its decode and its dot products."""

_FLOAT32 = np.dtype(np.float32)


@lowers(QMATMUL)
def lower_qmatmul(ctx: LoweringContext, node: Node) -> StepFn:
    encoding = node.attrs["encoding"]
    int8 = node.attrs.get("int8_activations", False)
    lookup = RowLookup(encoding.name, np.dtype(np.int64), _FLOAT32)

    def run(rt, slot, lhs, rhs):
        table = np.ascontiguousarray(rhs)
        vocab, width = table.shape[0], encoding.hidden_size(table.shape[1])
        out = rt.empty(slot, (*lhs.shape[:-1], vocab), _FLOAT32)
        hidden = np.ascontiguousarray(lhs).reshape(-1, width)
        logits = out.reshape(hidden.shape[0], vocab)
        if logits.size == 0:
            return out
        parallel = table.nbytes * hidden.shape[0] >= PARALLEL_MIN_BYTES
        if int8 and encoding.name in INT8_FORMATS:
            int8_rowdot(encoding.name, hidden, table, logits, parallel=parallel)
            return out
        if encoding.name in FUSED_FORMATS:
            quantized_rowdot(encoding.name, hidden, table, logits, parallel=parallel)
            return out
        chunk = min(CHUNK_ROWS, vocab)
        rows = np.empty((chunk, width), _FLOAT32)
        scratch = np.empty(hidden.shape[0] * chunk, _FLOAT32)
        ids = np.arange(chunk, dtype=np.int64)
        parallel = rows.nbytes >= PARALLEL_MIN_BYTES
        for start in range(0, vocab, chunk):
            count = min(chunk, vocab - start)
            decoded = rows[:count]
            lookup(table[start : start + count], ids[:count], 0, MODE_ERROR, decoded, parallel)
            chunk_logits = scratch[: hidden.shape[0] * count].reshape(hidden.shape[0], count)
            rowdot(hidden, decoded, chunk_logits, parallel=parallel)
            logits[:, start : start + count] = chunk_logits
        return out

    return run
