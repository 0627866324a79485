"""Gather rows of a block-quantized table and dequantize only those rows, in one pass.

The table stays as GGUF stores it, uint8 ``(rows, row_bytes)``; each id's row is decoded
straight into the output (float32) or through a small float32 buffer that is then rounded to
bfloat16/float16 (round to nearest even, as ``ndarray.astype`` does). Values are bit-identical
to ``ember.quant``'s reference ``dequantize(table[ids])``.

>>> import numpy as np
>>> from ember.quant import get_format
>>> table = get_format("q8_0").quantize(np.arange(64, dtype=np.float32).reshape(2, 32))
>>> out = np.empty((3, 32), np.float32)
>>> gather_dequantize("q8_0", table, np.array([1, 0, 5]), 0, MODE_ZERO, out, False)
-1
>>> out[0, :3], out[2, :3]
(array([32., 33., 34.], dtype=float32), array([0., 0., 0.], dtype=float32))
>>> gather_dequantize("q8_0", table, np.array([1, 0, 5]), 0, MODE_ERROR, out, False)
2
"""

from __future__ import annotations

import platform

import ml_dtypes
import numpy as np
from llvmlite import ir
from numba import get_num_threads, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .dequantize_rows_kquants import row_q2_k, row_q3_k, row_q4_k, row_q5_k, row_q6_k
from .dequantize_rows_legacy import row_q4_0, row_q4_1, row_q5_0, row_q5_1, row_q8_0
from .modes import MODE_CLAMP, MODE_ERROR, MODE_WRAP, MODE_ZERO

__all__ = ["MODE_CLAMP", "MODE_ERROR", "MODE_WRAP", "MODE_ZERO", "gather_dequantize"]

# name -> (code the kernels branch on, values per block, bytes per block)
_FORMATS = {
    "q4_0": (0, 32, 18),
    "q4_1": (1, 32, 20),
    "q5_0": (2, 32, 22),
    "q5_1": (3, 32, 24),
    "q8_0": (4, 32, 34),
    "q2_k": (5, 256, 84),
    "q3_k": (6, 256, 110),
    "q4_k": (7, 256, 144),
    "q5_k": (8, 256, 176),
    "q6_k": (9, 256, 210),
}

_F32, _BF16, _F16 = 0, 1, 2
_OUT_KINDS = {
    np.dtype(np.float32): _F32,
    np.dtype(ml_dtypes.bfloat16): _BF16,
    np.dtype(np.float16): _F16,
}

_F16_TO_F32 = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
"""Every fp16 bit pattern as float32, converted by numpy exactly as the reference converts."""

STREAM_MIN_BYTES = 8 * 1024 * 1024
"""Output size above which non-temporal stores beat plain ones (the output no longer fits the
cache a consumer would read it from)."""

_HAVE_STREAM = platform.machine().lower() in ("x86_64", "amd64")
"""Non-temporal stores plus a fence have the ordering relied on here on x86-64."""


# ---- per row --------------------------------------------------------------------------------


@njit(cache=True)
def _decode_row(code, src, dst, f16):
    """Dispatch once per row, so the per-format loops stay free of the choice."""
    if code == 0:
        row_q4_0(src, dst, f16)
    elif code == 1:
        row_q4_1(src, dst, f16)
    elif code == 2:
        row_q5_0(src, dst, f16)
    elif code == 3:
        row_q5_1(src, dst, f16)
    elif code == 4:
        row_q8_0(src, dst, f16)
    elif code == 5:
        row_q2_k(src, dst, f16)
    elif code == 6:
        row_q3_k(src, dst, f16)
    elif code == 7:
        row_q4_k(src, dst, f16)
    elif code == 8:
        row_q5_k(src, dst, f16)
    else:
        row_q6_k(src, dst, f16)


@njit(cache=True)
def _to_bf16(src, dst):
    """float32 -> bfloat16 bits, round to nearest even; NaN becomes the quiet NaN of its sign."""
    bits = src.view(np.uint32)
    for j in range(src.size):
        u = np.int64(bits[j])
        rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        nan = ((u >> 16) & 0x8000) | 0x7FC0
        dst[j] = np.uint16(nan if (u & 0x7FFFFFFF) > 0x7F800000 else rounded)


@njit(cache=True, inline="always")
def _half_bits(u):
    """float32 bits -> float16 bits, round to nearest even, NaN payloads kept as numpy keeps them."""
    sign = (u >> 16) & 0x8000
    a = u & 0x7FFFFFFF
    if a >= 0x38800000:  # a normal half, or too large for one
        if a >= 0x7F800000:  # inf, NaN
            payload = (a & 0x7FFFFF) >> 13
            if a > 0x7F800000 and payload == 0:
                payload = 1
            return sign | 0x7C00 | payload
        return sign | min((a - 0x38000000 + 0xFFF + ((a >> 13) & 1)) >> 13, 0x7C00)
    exponent = a >> 23
    if exponent < 101:  # below half the smallest subnormal half: zero
        return sign
    mantissa = (a & 0x7FFFFF) | 0x800000
    shift = 126 - exponent  # value * 2**24 == mantissa >> shift
    q = mantissa >> shift
    rest = mantissa & ((1 << shift) - 1)
    tie = 1 << (shift - 1)
    if rest > tie or (rest == tie and (q & 1)):
        q += 1
    return sign | q


@njit(cache=True)
def _to_f16(src, dst):
    bits = src.view(np.uint32)
    for j in range(src.size):
        dst[j] = np.uint16(_half_bits(np.int64(bits[j])))


@njit(cache=True, inline="always")
def _resolve(idx, rows, mode):
    """The row for ``idx = id - offset``: >= 0 to read, -1 to zero, -2 for a bad id."""
    if idx >= 0 and idx < rows:
        return idx
    if mode == MODE_ZERO:
        return -1
    if mode == MODE_CLAMP and rows > 0:
        return 0 if idx < 0 else rows - 1
    if mode == MODE_WRAP and idx >= -rows and idx < 0:
        return idx + rows
    return -2


@njit(cache=True)
def _first_bad(ids, offset, rows, mode):
    for i in range(ids.size):
        if _resolve(ids[i] - offset, rows, mode) == -2:
            return i
    return -1


# ---- streaming stores ------------------------------------------------------------------------

_I8P = ir.IntType(8).as_pointer()
_LINE = ir.VectorType(ir.IntType(64), 8)  # one 64-byte cache line


@intrinsic
def _memcpy(typingctx, dst, src, nbytes):
    """``memcpy`` between two addresses."""

    def codegen(context, builder, sig, args):
        dst, src, nbytes = args
        to, frm = builder.inttoptr(dst, _I8P), builder.inttoptr(src, _I8P)
        cgutils.raw_memcpy(builder, to, frm, nbytes, 1)
        return context.get_dummy_value()

    return types.void(types.int64, types.int64, types.int64), codegen


@intrinsic
def _stream_line(typingctx, dst, src):
    """Copy 64 bytes to a 64-byte aligned ``dst`` with a non-temporal store: the line goes to
    memory without first being read into the cache (a third of a plain store's traffic)."""

    def codegen(context, builder, sig, args):
        dst, src = args
        line = builder.load(builder.inttoptr(src, _LINE.as_pointer()), align=1)
        store = builder.store(line, builder.inttoptr(dst, _LINE.as_pointer()), align=64)
        store.set_metadata("nontemporal", builder.module.add_metadata([ir.IntType(32)(1)]))
        return context.get_dummy_value()

    return types.void(types.int64, types.int64), codegen


@intrinsic
def _fence(typingctx):
    """Orders the weakly ordered non-temporal stores before anything that follows."""

    def codegen(context, builder, sig, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


@njit(cache=True)
def _stream_row(dst, src, nbytes):
    """Copy ``nbytes`` from ``src`` to ``dst``: whole aligned lines streamed, the ends plain."""
    head = min((-dst) & 63, nbytes)
    _memcpy(dst, src, head)
    end = head + ((nbytes - head) & -64)
    for k in range(head, end, 64):
        _stream_line(dst + k, src + k)
    _memcpy(dst + end, src + end, nbytes - end)


# ---- spans of ids ---------------------------------------------------------------------------


@njit(cache=True)
def _span_f32(code, table, ids, offset, mode, out, f16, stream, start, stop):
    """Rows ``start:stop`` into float32 ``out``; streamed through an L1-sized buffer when
    ``stream``, else decoded in place."""
    hidden = out.shape[1]
    nbytes = hidden * 4
    base = out.ctypes.data
    buf = np.empty(hidden if stream else 0, np.float32)
    for i in range(start, stop):
        r = _resolve(ids[i] - offset, table.shape[0], mode)
        if r < 0:
            out[i, :] = 0
        elif stream:
            _decode_row(code, table[r], buf, f16)
            _stream_row(base + i * nbytes, buf.ctypes.data, nbytes)
        else:
            _decode_row(code, table[r], out[i], f16)
    if stream:
        _fence()


@njit(cache=True)
def _span_narrow(code, table, ids, offset, mode, out, f16, kind, stream, start, stop):
    """Rows ``start:stop`` into bfloat16/float16 ``out`` (seen as uint16), through a float32
    buffer."""
    hidden = out.shape[1]
    nbytes = hidden * 2
    base = out.ctypes.data
    buf = np.empty(hidden, np.float32)
    half = np.empty(hidden if stream else 0, np.uint16)
    for i in range(start, stop):
        r = _resolve(ids[i] - offset, table.shape[0], mode)
        if r < 0:
            out[i, :] = 0
            continue
        _decode_row(code, table[r], buf, f16)
        dst = half if stream else out[i]
        if kind == _BF16:
            _to_bf16(buf, dst)
        else:
            _to_f16(buf, dst)
        if stream:
            _stream_row(base + i * nbytes, half.ctypes.data, nbytes)
    if stream:
        _fence()


# One entry per output family and threading: each compiles only the span it calls.


@njit(cache=True)
def _gather_f32(code, table, ids, offset, mode, out, f16, kind, stream, chunks):
    bad = _first_bad(ids, offset, table.shape[0], mode)
    if bad < 0:
        _span_f32(code, table, ids, offset, mode, out, f16, stream, 0, ids.size)
    return bad


@njit(cache=True)
def _gather_narrow(code, table, ids, offset, mode, out, f16, kind, stream, chunks):
    bad = _first_bad(ids, offset, table.shape[0], mode)
    if bad < 0:
        _span_narrow(code, table, ids, offset, mode, out, f16, kind, stream, 0, ids.size)
    return bad


@njit(cache=True, parallel=True)
def _gather_f32_parallel(code, table, ids, offset, mode, out, f16, kind, stream, chunks):
    bad = _first_bad(ids, offset, table.shape[0], mode)
    if bad >= 0:
        return bad
    n = ids.size
    for c in prange(chunks):
        start, stop = c * n // chunks, (c + 1) * n // chunks
        _span_f32(code, table, ids, offset, mode, out, f16, stream, start, stop)
    return -1


@njit(cache=True, parallel=True)
def _gather_narrow_parallel(code, table, ids, offset, mode, out, f16, kind, stream, chunks):
    bad = _first_bad(ids, offset, table.shape[0], mode)
    if bad >= 0:
        return bad
    n = ids.size
    for c in prange(chunks):
        start, stop = c * n // chunks, (c + 1) * n // chunks
        _span_narrow(code, table, ids, offset, mode, out, f16, kind, stream, start, stop)
    return -1


# ---- entry point ----------------------------------------------------------------------------


def gather_dequantize(
    fmt_name: str,
    table: np.ndarray,
    ids: np.ndarray,
    offset: int,
    mode: int,
    out: np.ndarray,
    parallel: bool,
) -> int:
    """Write ``dequantize(table[ids[i] - offset])`` to ``out[i]`` for every ``i``.

    Ids outside ``[offset, offset + rows)`` follow ``mode`` (see ``modes``); with
    ``MODE_ERROR`` (or an unknown mode) the first bad position is returned and ``out`` is left
    unspecified. ``parallel`` splits the ids over numba's threads (worth it for large outputs).

    Returns:
        -1 when every id was usable, else the position of the first one that was not.

    Raises:
        ValueError: unknown format, or arrays whose dtype, shape or layout do not fit.
    """
    spec = _FORMATS.get(str(fmt_name).lower())
    if spec is None:
        raise ValueError(f"unknown quantization format {fmt_name!r}; known: {', '.join(_FORMATS)}")
    code, block_elements, block_bytes = spec
    table = _as_table(table, fmt_name, block_bytes)
    hidden = table.shape[1] // block_bytes * block_elements
    ids = _as_ids(ids)
    kind = _OUT_KINDS.get(out.dtype)
    if kind is None:
        raise ValueError(f"output dtype must be float32, float16 or bfloat16, got {out.dtype}")
    if out.shape != (ids.size, hidden):
        raise ValueError(f"output shape {out.shape} != ({ids.size}, {hidden}) for {fmt_name}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("output must be a writeable C-contiguous array")
    if type(out) is not np.ndarray:
        out = out.view(np.ndarray)
    offset = int(offset)
    mode = int(mode)
    if ids.size == 0:
        return -1
    stream = _HAVE_STREAM and out.nbytes >= STREAM_MIN_BYTES
    if kind != _F32:
        out = out.view(np.uint16)
    # get_num_threads() inside the kernel would keep numba from caching it.
    chunks = min(ids.size, 4 * get_num_threads()) if parallel else 1
    run = _KERNELS[kind == _F32, bool(parallel)]
    return int(run(code, table, ids, offset, mode, out, _F16_TO_F32, kind, stream, chunks))


_KERNELS = {
    (True, False): _gather_f32,
    (True, True): _gather_f32_parallel,
    (False, False): _gather_narrow,
    (False, True): _gather_narrow_parallel,
}


def _as_table(table: np.ndarray, fmt_name: str, block_bytes: int) -> np.ndarray:
    if table.dtype != np.uint8 or table.ndim != 2:
        raise ValueError(
            f"a {fmt_name} table is uint8 (rows, row_bytes), got {table.dtype} {table.shape}"
        )
    if table.shape[1] % block_bytes:
        raise ValueError(
            f"{fmt_name} rows are whole blocks of {block_bytes} bytes; "
            f"{table.shape[1]} bytes is not a multiple of {block_bytes}"
        )
    if not table.flags.c_contiguous:
        raise ValueError("the table must be C-contiguous (copying it would defeat the gather)")
    return table if type(table) is np.ndarray else table.view(np.ndarray)


def _as_ids(ids: np.ndarray) -> np.ndarray:
    """Ids as int64, the one type the kernels compile for; uint64 beyond int64 saturates (still
    out of range, never wrapping to a negative id)."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ValueError(f"ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
    if ids.dtype == np.uint64:
        ids = np.minimum(ids, np.uint64(np.iinfo(np.int64).max))
    return ids.astype(np.int64, copy=False)
