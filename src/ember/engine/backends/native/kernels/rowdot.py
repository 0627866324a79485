"""Dense LM-head logits: ``logits[t, v] = dot(hidden[t], table[v])`` in float32, streaming the
table once per call for every token of the batch.

The table is split into blocks of rows over the threads; each row is read once and dotted with
every token while it is in the cache. bfloat16 rows are widened to float32 exactly as they are
loaded (a shift of their bits); float16 rows, a pair at a time, into a buffer of the thread's.
Large batches on CPUs without AVX-512 copy float32 and bfloat16 rows into panels first
(`PANEL_MIN_TOKENS`); float16 rows stay on the tiles.

Every dot product is summed in one fixed order, written out in LLVM IR rather than left to the
optimizer (`compiled.dot_lanes`): ``LANES`` running sums (lane ``j`` takes the elements
``i = j mod LANES`` in turn), added in a fixed tree, then the tail elements in turn. Each step
is one fused multiply-add where the CPU has them, else a product then a sum. The order depends on
nothing but the hidden width, so a row's logit has the same bits whatever rows, tokens,
threads or blocks a call covers: a vocabulary-sharded head equals the unsharded one bit for bit.

>>> import numpy as np
>>> table = np.arange(12, dtype=np.float32).reshape(4, 3)
>>> logits = np.empty((1, 4), np.float32)
>>> rowdot(np.array([[1.0, 0.0, 2.0]], np.float32), table, logits)
>>> logits
array([[ 4., 13., 22., 31.]], dtype=float32)
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from .compiled.dense_dot import ROW_BLOCK, rowdot_parallel, rowdot_serial, widen_float16
from .compiled.dot_lanes import LANES
from .compiled.panel_dot import panel_rowdot_parallel, panel_rowdot_serial
from .compiled.target import target_has
from .launch import launch

__all__ = ["LANES", "ROW_BLOCK", "TABLE_DTYPES", "rowdot", "widen_float16"]

TABLE_DTYPES = (np.dtype(np.float32), np.dtype(ml_dtypes.bfloat16), np.dtype(np.float16))
"""The table dtypes the kernel reads; narrow ones are widened exactly as each row is read."""

PANEL_MIN_TOKENS = 12 if not target_has("avx512f") else None
"""From this many tokens, float32 and bfloat16 tables (and decoded quantized rows,
`decoded_rowdot`) are dotted in packed panels (`compiled.panel_dot`, the same bits), where
AVX's 16 registers cannot hold a row tile's sums (Zen 3, 65536 x 4096, two threads, panels'
time over the row tiles': float32 0.93 / 0.76 / 0.68 at 8 / 12 / 16 tokens, bfloat16 1.17 /
0.91 / 0.80; 0.3-0.6 at 64). AVX-512's 32 registers hold them: the row tiles stay."""


def rowdot(hidden: np.ndarray, table: np.ndarray, out: np.ndarray, parallel: bool = True) -> None:
    """``out[t, v] = dot(hidden[t], table[v])``: float32 `hidden` `(tokens, width)` against a
    `(vocab, width)` table of float32, bfloat16 or float16, into float32 `out` `(tokens,
    vocab)`; all three C-contiguous. Parallel over the table's rows when the cores are free.

    Raises:
        TypeError: a dtype is not one the kernel reads.
        ValueError: the shapes do not fit together or an array is not C-contiguous.
    """
    if hidden.dtype != np.float32 or out.dtype != np.float32:
        raise TypeError(f"rowdot: hidden and out must be float32, got {hidden.dtype}, {out.dtype}")
    if table.dtype not in TABLE_DTYPES:
        raise TypeError(f"rowdot: the table must be one of {TABLE_DTYPES}, got {table.dtype}")
    if (
        hidden.ndim != 2
        or table.ndim != 2
        or hidden.shape[1] != table.shape[1]
        or out.shape != (hidden.shape[0], table.shape[0])
    ):
        raise ValueError(
            f"rowdot: hidden {hidden.shape}, table {table.shape} and out {out.shape} do not fit "
            "((tokens, width), (vocab, width), (tokens, vocab))"
        )
    if not (hidden.flags.c_contiguous and table.flags.c_contiguous and out.flags.c_contiguous):
        raise ValueError("rowdot: hidden, table and out must be C-contiguous")
    if table.dtype == ml_dtypes.bfloat16:
        table = table.view(np.uint16)
    elif table.dtype == np.float16:
        table = table.view(np.int16)
    if out.size == 0:
        return
    serial, parallel_kernel = rowdot_serial, rowdot_parallel
    if (
        PANEL_MIN_TOKENS is not None
        and hidden.shape[0] >= PANEL_MIN_TOKENS
        and table.dtype != np.int16  # float16 widens a value at a time in a panel: slower
    ):
        serial, parallel_kernel = panel_rowdot_serial, panel_rowdot_parallel
    if not parallel or table.shape[0] < 2 * ROW_BLOCK:
        serial(hidden, table, out)
        return
    launch(lambda: parallel_kernel(hidden, table, out), lambda: serial(hidden, table, out))
