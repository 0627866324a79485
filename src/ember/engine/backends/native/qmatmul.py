"""Native lowering of `qmatmul`, one kernel call per head call, the dequantized table never
whole in memory. Q4_K, Q6_K and Q8_0 tables go to `quantized_rowdot`, which decodes each block
in registers and dots it with every token while it is there; the other formats, and those
three from `FUSED_BELOW` tokens without AVX-512, to `decoded_rowdot`, which decodes a few rows
at a time into a buffer of each thread's (bit for bit as gguf decodes) and dots them by
`rowdot`'s tiles or panels.

Both sum each dot product in `rowdot`'s one order, fixed by the width alone, so a row's logit
has the same bits whichever tile or thread it falls in: the logits equal the dense head's over
the dequantized table, bit for bit. With ``int8_activations``, Q4_K and Q6_K go to
`int8_rowdot` (hidden states quantized to 8 bits, integer dot products) where the CPU has
AVX2 (AVX-512 VNNI's one instruction a sum where it has them, and for Q4_K from 8 tokens AMX's
tile unit where it has one); the other formats stay exact."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.qmatmul import QMATMUL

from .kernels.decoded_rowdot import decoded_rowdot
from .kernels.gather import PARALLEL_MIN_BYTES
from .kernels.int8_rowdot import INT8_FORMATS, int8_rowdot
from .kernels.quantized_rowdot import FUSED_FORMATS, quantized_rowdot
from .kernels.rowdot import PANEL_MIN_TOKENS
from .lowering import LoweringContext, StepFn, lowers

__all__ = ["FUSED_BELOW", "lower_qmatmul"]

_FLOAT32 = np.dtype(np.float32)

FUSED_BELOW = None if PANEL_MIN_TOKENS is None else max(PANEL_MIN_TOKENS, 16)
"""Tokens from which Q4_K, Q6_K and Q8_0 leave their fused kernel for decoded rows in panels
(without AVX-512; None: never). Zen 3, one thread, 2400 cached rows, panels' time over the
fused kernel's: at 12 tokens 0.88 / 1.10 / 0.92 (Q4_K / Q6_K / Q8_0), at 16 0.72-0.89, at 32
0.46-0.56."""


@lowers(QMATMUL)
def lower_qmatmul(ctx: LoweringContext, node: Node) -> StepFn:
    encoding = node.attrs["encoding"]
    int8 = node.attrs.get("int8_activations", False)

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
        panels = FUSED_BELOW is not None and hidden.shape[0] >= FUSED_BELOW
        if encoding.name in FUSED_FORMATS and not panels:
            quantized_rowdot(encoding.name, hidden, table, logits, parallel=parallel)
        else:
            decoded_rowdot(encoding.name, hidden, table, logits, parallel=parallel)
        return out

    return run
