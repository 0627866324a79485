"""Quantized LM-head logits for every registry format: each thread decodes a few rows at a time
with the format's compiled row decoder into a buffer of its own (``DECODE_ROWS`` rows, kept in
its core's cache), and dots them with every token by `rowdot`'s tiles (from
`rowdot.PANEL_MIN_TOKENS` tokens without AVX-512, a panel's rows at a time by its panels), in
one kernel call per head call. The decoded table is never whole in memory.

Rows decode bit for bit as `gguf.quants.dequantize` makes them and each dot product is summed in
`rowdot`'s one order, so the logits equal the dense head's over the decoded table, bit for bit,
whichever rows a call covers. (Q4_K, Q6_K and Q8_0 have a kernel that decodes in registers,
`quantized_rowdot`, with the same bits, faster below `qmatmul.FUSED_BELOW` tokens.)

>>> import numpy as np
>>> from ember.quant import FORMATS, row_values
>>> table = FORMATS["q4_0"].quantize(np.arange(64, dtype=np.float32).reshape(2, 32))
>>> logits = np.empty((1, 2), np.float32)
>>> decoded_rowdot("q4_0", np.ones((1, 32), np.float32), table, logits)
>>> logits  # 0 + ... + 31 = 496 and 32 + ... + 63 = 1520, as quantized
array([[ 496., 1512.]], dtype=float32)
"""

from __future__ import annotations

import functools

import numpy as np
from numba import prange

from ember.quant import FORMATS, row_values

from .compiled.cache import jit
from .compiled.decoders import decode_row
from .compiled.decoders.bytes import F16_TO_F32
from .compiled.dense_dot import rowdot_span
from .compiled.panel_dot import PANEL_ROWS, TASK_ROWS, pack_tokens, panel_buffers, panel_span
from .launch import launch
from .rowdot import PANEL_MIN_TOKENS

__all__ = ["DECODE_ROWS", "ROW_BLOCK", "decoded_rowdot"]

DECODE_ROWS = 16
"""Rows a thread decodes before dotting them: 256 KiB of float32 at width 4096, within a core's
L2 between the decode and the dot products."""

ROW_BLOCK = 64
"""Rows a thread takes at a time."""


@functools.cache
def _kernels(fmt: str):
    """(serial, parallel) kernels ``(table, hidden, out, f16)`` of format ``fmt``, a constant of
    these closures so that each compiles its own row decoder alone."""

    @jit(nogil=True)
    def span(table, hidden, out, start, stop, f16):
        rows = np.empty((DECODE_ROWS, hidden.shape[1]), np.float32)
        unused = np.empty((0, hidden.shape[1]), np.float32)  # rowdot's buffer: float16 only
        for first in range(start, stop, DECODE_ROWS):
            count = min(DECODE_ROWS, stop - first)
            for i in range(count):
                decode_row(fmt, table[first + i], rows[i], f16)
            rowdot_span(hidden, rows, out[:, first : first + count], 0, count, unused)

    @jit(nogil=True)
    def serial(table, hidden, out, f16):
        span(table, hidden, out, 0, table.shape[0], f16)

    @jit(nogil=True, parallel=True)
    def parallel(table, hidden, out, f16):
        rows = table.shape[0]
        for block in prange((rows + ROW_BLOCK - 1) // ROW_BLOCK):
            start = block * ROW_BLOCK
            span(table, hidden, out, start, min(start + ROW_BLOCK, rows), f16)

    return serial, parallel


@functools.cache
def _panel_kernels(fmt: str):
    """`_kernels`' for large batches (`rowdot.PANEL_MIN_TOKENS`): a panel's rows decoded into
    a buffer, then dotted in `compiled.panel_dot`'s panels, with the same bits."""

    @jit(nogil=True)
    def span(table, hidden, xp, out, start, stop, f16):
        rows = np.empty((PANEL_ROWS, hidden.shape[1]), np.float32)
        panel, sums = panel_buffers(hidden.shape[1])
        for first in range(start, stop, PANEL_ROWS):
            count = min(PANEL_ROWS, stop - first)
            for i in range(count):
                decode_row(fmt, table[first + i], rows[i], f16)
            panel_span(hidden, xp, rows, out[:, first : first + count], 0, count, panel, sums)

    @jit(nogil=True)
    def serial(table, hidden, out, f16):
        span(table, hidden, pack_tokens(hidden), out, 0, table.shape[0], f16)

    @jit(nogil=True, parallel=True)
    def parallel(table, hidden, out, f16):
        xp = pack_tokens(hidden)
        rows = table.shape[0]
        for i in prange((rows + TASK_ROWS - 1) // TASK_ROWS):
            start = i * TASK_ROWS
            span(table, hidden, xp, out, start, min(start + TASK_ROWS, rows), f16)

    return serial, parallel


def _row_values(fmt: str, nbytes: int) -> int:
    """Values in a row of `nbytes` bytes of `fmt` (a rowwise format's scale and bias included),
    or -1 where no whole row has that many bytes."""
    try:
        return row_values(FORMATS[fmt], nbytes)
    except ValueError:
        return -1


def decoded_rowdot(
    fmt: str, hidden: np.ndarray, table: np.ndarray, out: np.ndarray, parallel: bool = True
) -> None:
    """``out[t, v] = dot(hidden[t], decode(table[v]))``: float32 `hidden` `(tokens, width)`
    against `fmt`'s uint8 blocks `(vocab, row bytes)` holding `width` values a row, into float32
    `out` `(tokens, vocab)`; all three C-contiguous. Parallel over rows when the cores are free.

    Raises:
        ValueError: `fmt` is not a registry format, or the arrays do not fit together.
        TypeError: a dtype is not the one expected.
    """
    known = FORMATS.get(fmt)
    if known is None:
        raise ValueError(f"decoded_rowdot: unknown format {fmt!r}")
    fmt = known.name
    if hidden.dtype != np.float32 or out.dtype != np.float32 or table.dtype != np.uint8:
        raise TypeError(
            "decoded_rowdot: hidden and out must be float32 and the table uint8, got "
            f"{hidden.dtype}, {out.dtype}, {table.dtype}"
        )
    if (
        hidden.ndim != 2
        or table.ndim != 2
        or hidden.shape[1] != _row_values(fmt, table.shape[1])
        or out.shape != (hidden.shape[0], table.shape[0])
    ):
        raise ValueError(
            f"decoded_rowdot: hidden {hidden.shape}, {fmt} table {table.shape} and out "
            f"{out.shape} do not fit ((tokens, width), (vocab, row bytes), (tokens, vocab))"
        )
    if not (hidden.flags.c_contiguous and table.flags.c_contiguous and out.flags.c_contiguous):
        raise ValueError("decoded_rowdot: hidden, table and out must be C-contiguous")
    if out.size == 0:
        return
    panels = PANEL_MIN_TOKENS is not None and hidden.shape[0] >= PANEL_MIN_TOKENS
    serial, parallel_kernel = (_panel_kernels if panels else _kernels)(fmt)
    if not parallel or table.shape[0] < 2 * ROW_BLOCK:
        serial(table, hidden, out, F16_TO_F32)
        return
    launch(
        lambda: parallel_kernel(table, hidden, out, F16_TO_F32),
        lambda: serial(table, hidden, out, F16_TO_F32),
    )
