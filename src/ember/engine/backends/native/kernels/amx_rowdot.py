"""Q4_K logits with 8-bit activations on Intel AMX's tile unit: `int8_rowdot`'s integer sums,
made for 16 rows and 16 tokens at once by one ``tdpbusd`` per sub-block, then `int8_rowdot`'s
float32 operations in its order, so the logits are its bits (a NaN logit is NaN in both; which
NaN is not specified), at a fraction of the instructions per product.

A tile of 16 rows is decoded block by block into levels (0..15; each sub-block's 32 a tile
row) and `int8_blocks`' scales, each row asking memory for its next block meanwhile (16 rows
are more streams than the hardware prefetchers follow). The activations of 16 tokens are laid
out as the unit's second operand (``B[k / 4][4 n + k % 4]``). Each sub-block's 16 x 16 exact
32-bit sums then get, per row and token, `int8_rowdot`'s float32 work: converted, times
``(d * sc) * dx``, plus ``-dmin * m`` times ``dx * sum(xq)``, summed over blocks, and the
8 sub-blocks added in its tree. Tokens are padded with zeros to a multiple of 16.

Linux hands a process the tile registers only once it asks (``arch_prctl``); `tiles_ready`
asks once, and where the CPU, its compile target or the kernel says no, `int8_rowdot` keeps
its vector kernel.
"""

from __future__ import annotations

import ctypes
import functools
import platform

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .compiled.cache import jit
from .compiled.decoders.bytes import F16_TO_F32
from .compiled.device import prefetch_bytes
from .compiled.int8_blocks import (
    BLOCK,
    BLOCK_BYTES,
    DECODERS,
    FSUMS,
    I8,
    I32,
    Q4_K,
    SUMS,
    array_data,
    broadcast,
    call_intrinsic,
    load_at,
    pointer_at,
)
from .compiled.target import target_has
from .launch import launch

__all__ = ["AMX_FORMATS", "TILE", "TILE_MIN_TOKENS", "q4_k_tile_logits", "tiles_ready"]

TILE = 16
"""Rows and tokens of one tile of sums."""

TILE_MIN_TOKENS = 8
"""Tokens from which the tile kernel runs instead of the vector one (128256 x 4096, two
threads, tile / vector kernel: 0.87-0.89 at 8 tokens, 0.70 at 12, 0.59 at 16; level or
slower at 6, 1.13 at 4)."""

AMX_FORMATS = ("q4_k",) if target_has("amx-tile", "amx-int8") else ()
"""The formats with a tile kernel for the compile target."""

_SUB_BLOCKS, _SUB_VALUES = 8, 32
_BLOCK_BYTES = BLOCK_BYTES[Q4_K]
_TILE_SUMS = _SUB_BLOCKS * TILE * TILE
"""32-bit sums of one block of a tile of rows and tokens."""

ROW_BLOCK = 96
"""Rows a thread takes at a time (a multiple of `TILE`)."""

AHEAD = 1
"""Blocks ahead of the one decoded that each row asks memory for. At 16 tokens, 128256 x 4096,
two threads: 2, 3 and 4 blocks ahead 1.1-1.25x slower, none 1.7x."""

_I64 = ir.IntType(64)

_POSITION = [(j // 4) * 4 + (j % 2) * 2 + (j % 4) // 2 for j in range(_SUB_BLOCKS)]
"""Where sub-block ``j``'s 32 levels lie in a decoded row's 256 bytes: 64 packed bytes (two
chunks of 32) give sub-blocks ``4c`` and ``4c + 2`` by their low nibbles, ``4c + 1`` and
``4c + 3`` by their high ones, each stored as it comes."""

_CONFIG = np.zeros(64, np.uint8)
"""The tile configuration (``ldtilecfg``'s 64 bytes): palette 1; tiles 0-3 sums (16 rows of
16 int32), 4-5 levels (16 rows of 32 bytes), 6-7 activations (8 rows of 4 values x 16
tokens)."""
_CONFIG[0] = 1
_CONFIG[16:32].view(np.uint16)[:] = [64] * 4 + [32] * 2 + [64] * 2
_CONFIG[48:56] = [16] * 6 + [8] * 2


@functools.cache
def tiles_ready() -> bool:
    """Whether this process may use the tile registers (Linux is asked once)."""
    if not AMX_FORMATS or platform.system() != "Linux":
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    arch_prctl, request_permission, tile_data = 158, 0x1023, 18
    return libc.syscall(arch_prctl, request_permission, tile_data) == 0


# ---- LLVM IR ---------------------------------------------------------------------------------


def _tile_op(builder, name, *arguments):
    """``llvm.x86.<name>``, a tile instruction (tile numbers are 8-bit immediates)."""
    call_intrinsic(builder, f"llvm.x86.{name}", ir.VoidType(), list(arguments))


def _vector(builder, base, offset, kind=FSUMS):
    """A vector of `kind` at ``base + offset`` in one of the kernel's 4-byte arrays."""
    return load_at(builder, base, offset, kind, align=4)


def _broadcast_load(builder, base, offset):
    return broadcast(builder, builder.load(builder.gep(base, [offset])))


@intrinsic
def _configure(typingctx, config):
    def codegen(context, builder, sig, args):
        config_p = array_data(context, builder, sig.args[0], args[0])
        _tile_op(builder, "ldtilecfg", pointer_at(builder, config_p, I32(0), I8))
        return context.get_dummy_value()

    return types.none(config), codegen


@intrinsic
def _release(typingctx):
    def codegen(context, builder, sig, args):
        _tile_op(builder, "tilerelease")
        return context.get_dummy_value()

    return types.none(), codegen


@intrinsic
def _decode(typingctx, row, at, levels, scales, minimums, r, f16):
    """Q4_K block ``row[at:]`` into ``levels[256 r:]`` (`_POSITION`'s order) and its
    ``d * sc`` and ``-dmin * m`` (`int8_blocks`' operations) into ``scales[16 r:]`` and
    ``minimums[16 r:]`` (sub-block ``j`` in lanes ``j`` and ``j + 8``); asks memory for
    the row's block ``AHEAD`` blocks on (a prefetch never faults, past the table's end
    too)."""

    def codegen(context, builder, sig, args):
        row_p, levels_p, scales_p, minimums_p, f16_p = (
            array_data(context, builder, sig.args[i], args[i]) for i in (0, 2, 3, 4, 6)
        )
        at, r = args[1], args[5]
        intp = r.type
        block = builder.gep(row_p, [at])
        prefetch_bytes(builder, builder.gep(block, [intp(AHEAD * _BLOCK_BYTES)]), _BLOCK_BYTES)
        low = ir.Constant(SUMS, [0x0F0F0F0F] * 16)
        for c in range(2):
            packed = load_at(builder, block, intp(16 + 64 * c), SUMS)  # bytes: no alignment
            high = builder.lshr(packed, ir.Constant(SUMS, [4] * 16))
            nibbles = (builder.and_(packed, low), builder.and_(high, low))
            for h, vector in enumerate(nibbles):
                offset = builder.add(builder.mul(r, intp(BLOCK)), intp(128 * c + 64 * h))
                builder.store(vector, pointer_at(builder, levels_p, offset, SUMS), align=1)
        _, block_scales, block_minimums = DECODERS[Q4_K](builder, block, f16_p)
        for pointer, vector in ((scales_p, block_scales), (minimums_p, block_minimums)):
            target = pointer_at(builder, pointer, builder.mul(r, intp(16)), FSUMS)
            builder.store(vector, target, align=4)
        return context.get_dummy_value()

    return types.none(row, at, levels, scales, minimums, r, f16), codegen


@intrinsic
def _sub_block_sums(typingctx, levels, bx, b, tt, sums):
    """``sums[256 j + 16 r + n]``: sub-block ``j`` of row ``r``'s decoded block (`levels`)
    dotted with token ``16 tt + n``'s levels of block ``b`` (`bx`), for the 8 sub-blocks."""

    def codegen(context, builder, sig, args):
        levels_p, bx_p, sums_p = (
            array_data(context, builder, sig.args[i], args[i]) for i in (0, 1, 4)
        )
        b, tt = args[2], args[3]
        intp = b.type
        token_tiles = builder.extract_value(
            context.make_array(sig.args[1])(context, builder, args[1]).shape, 2
        )
        for j in range(_SUB_BLOCKS):
            sums_tile, levels_tile, x_tile = (I8(n) for n in (j % 4, 4 + j % 2, 6 + j % 2))
            x_at = builder.add(builder.mul(builder.add(builder.mul(b, intp(_SUB_BLOCKS)),
                                                       intp(j)), token_tiles), tt)  # fmt: skip
            levels_at = intp(_POSITION[j] * _SUB_VALUES)
            levels_row = pointer_at(builder, levels_p, levels_at, I8)
            x_row = pointer_at(builder, bx_p, builder.mul(x_at, intp(8 * 64)), I8)
            _tile_op(builder, "tileloadd64", levels_tile, levels_row, _I64(BLOCK))
            _tile_op(builder, "tileloadd64", x_tile, x_row, _I64(64))
            _tile_op(builder, "tilezero", sums_tile)
            _tile_op(builder, "tdpbusd", sums_tile, levels_tile, x_tile)
            if j % 4 == 3:
                for i in range(j - 3, j + 1):
                    target = pointer_at(builder, sums_p, intp(i * TILE * TILE), I8)
                    _tile_op(builder, "tilestored64", I8(i % 4), target, _I64(64))
        return context.get_dummy_value()

    return types.none(levels, bx, b, tt, sums), codegen


@intrinsic
def _accumulate(typingctx, sums, scales, minimums, dx, level_sums, b, tt, running):
    """``running[tt, r, j] = fma(-dmin m, dx sum(xq), fma(sum, (d sc) dx, running))`` for 16
    tokens, `int8_rowdot`'s operations for block ``b``, for each of the tile's 16 rows."""

    def codegen(context, builder, sig, args):
        sums_p, scales_p, minimums_p, dx_p, level_sums_p, running_p = (
            array_data(context, builder, sig.args[i], args[i]) for i in (0, 1, 2, 3, 4, 7)
        )
        b, tt = args[5], args[6]
        intp = b.type
        padded = builder.extract_value(
            context.make_array(sig.args[3])(context, builder, args[3]).shape, 1
        )
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(FSUMS, [FSUMS] * 3), "llvm.fma.v16f32"
        )
        token0 = builder.mul(tt, intp(TILE))
        dx_tokens = _vector(builder, dx_p, builder.add(builder.mul(b, padded), token0))
        with cgutils.for_range(builder, intp(TILE), intp=intp) as loop:
            r = loop.index
            for j in range(_SUB_BLOCKS):
                total = _vector(builder, sums_p,
                                builder.add(intp(j * TILE * TILE), builder.mul(r, intp(TILE))),
                                SUMS)  # fmt: skip
                lane = builder.add(builder.mul(r, intp(16)), intp(j))
                scale = builder.fmul(_broadcast_load(builder, scales_p, lane), dx_tokens)
                slot = builder.add(builder.mul(builder.add(token0, r), intp(_SUB_BLOCKS)), intp(j))
                pointer = builder.bitcast(builder.gep(running_p, [builder.mul(slot, intp(TILE))]),
                                          FSUMS.as_pointer())  # fmt: skip
                value = builder.load(pointer, align=4)
                value = builder.call(fma, [builder.sitofp(total, FSUMS), scale, value])
                group = builder.add(builder.mul(b, intp(_SUB_BLOCKS)), intp(j))
                level_sum = _vector(builder, level_sums_p,
                                    builder.add(builder.mul(group, padded), token0))  # fmt: skip
                minimum = _broadcast_load(builder, minimums_p, lane)
                builder.store(builder.call(fma, [minimum, level_sum, value]), pointer, align=4)
        return context.get_dummy_value()

    return types.none(sums, scales, minimums, dx, level_sums, b, tt, running), codegen


@intrinsic
def _totals(typingctx, running, tt, logits):
    """``logits[16 r + n]``: row ``r``'s 8 sub-block sums for token ``16 tt + n`` added in
    `int8_rowdot`'s tree, ``((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7))``."""

    def codegen(context, builder, sig, args):
        running_p, logits_p = (array_data(context, builder, sig.args[i], args[i]) for i in (0, 2))
        tt = args[1]
        intp = tt.type
        for r in range(TILE):
            first = builder.mul(builder.add(builder.mul(tt, intp(TILE)), intp(r)),
                                intp(_SUB_BLOCKS))  # fmt: skip
            s = [_vector(builder, running_p, builder.mul(builder.add(first, intp(j)), intp(TILE)))
                 for j in range(_SUB_BLOCKS)]  # fmt: skip
            pairs = [builder.fadd(s[i], s[i + 4]) for i in range(4)]
            halves = [builder.fadd(pairs[i], pairs[i + 2]) for i in range(2)]
            target = builder.gep(logits_p, [intp(r * TILE)])
            builder.store(builder.fadd(*halves), builder.bitcast(target, FSUMS.as_pointer()),
                          align=4)  # fmt: skip
        return context.get_dummy_value()

    return types.none(running, tt, logits), codegen


# ---- the kernels ---------------------------------------------------------------------------


@jit(nogil=True)
def _span(table, bx, dx, level_sums, out, start, stop, f16, config):
    """Logits of rows ``[start, stop)`` into ``out[:, start:stop]``, 16 rows at a time (a
    short last tile repeats its last row)."""
    blocks, padded = dx.shape
    token_tiles = padded // TILE
    tokens = out.shape[0]
    levels = np.empty(TILE * BLOCK, np.uint8)
    scales = np.empty(TILE * 16, np.float32)
    minimums = np.empty(TILE * 16, np.float32)
    sums = np.empty(_TILE_SUMS, np.int32)
    running = np.empty(token_tiles * TILE * _SUB_BLOCKS * TILE, np.float32)
    logits = np.empty(TILE * TILE, np.float32)
    _configure(config)
    for first in range(start, stop, TILE):
        rows = min(TILE, stop - first)
        running[:] = 0.0
        for b in range(blocks):
            for r in range(TILE):
                _decode(table[first + min(r, rows - 1)], b * _BLOCK_BYTES, levels, scales,
                        minimums, r, f16)  # fmt: skip
            for tt in range(token_tiles):
                _sub_block_sums(levels, bx, b, tt, sums)
                _accumulate(sums, scales, minimums, dx, level_sums, b, tt, running)
        for tt in range(token_tiles):
            _totals(running, tt, logits)
            for r in range(rows):
                for n in range(min(TILE, tokens - tt * TILE)):
                    out[tt * TILE + n, first + r] = logits[r * TILE + n]
    _release()


@jit(nogil=True)
def _serial(table, bx, dx, level_sums, out, f16, config):
    _span(table, bx, dx, level_sums, out, 0, table.shape[0], f16, config)


@jit(nogil=True, parallel=True)
def _parallel(table, bx, dx, level_sums, out, f16, config):
    rows = table.shape[0]
    for block in prange((rows + ROW_BLOCK - 1) // ROW_BLOCK):
        start = block * ROW_BLOCK
        _span(table, bx, dx, level_sums, out, start, min(start + ROW_BLOCK, rows), f16, config)


def tile_activations(xq: np.ndarray, dx: np.ndarray, level_sums: np.ndarray):
    """`int8_rowdot`'s activations (`quantize_activations`' levels and scales, and
    `q4_k_level_sums`) as the tile kernel reads them, tokens padded with zeros to a multiple
    of 16: ``bx`` `(blocks, 8, tiles, 8, 64)` int8 (a sub-block's 32 values of 16 tokens, the
    unit's second operand), ``dx`` `(blocks, padded)` and the level sums `(blocks, 8,
    padded)`."""
    tokens, width = xq.shape
    blocks = width // BLOCK
    padded = -(-tokens // TILE) * TILE
    levels = np.zeros((padded, width), np.int8)
    levels[:tokens] = xq
    bx = levels.reshape(padded // TILE, TILE, blocks, _SUB_BLOCKS, 8, 4).transpose(2, 3, 0, 4, 1, 5)
    bx = np.ascontiguousarray(bx).reshape(blocks, _SUB_BLOCKS, padded // TILE, 8, 64)
    scale = np.zeros((blocks, padded), np.float32)
    scale[:, :tokens] = dx.T
    sums = np.zeros((blocks, _SUB_BLOCKS, padded), np.float32)
    sums[:, :, :tokens] = level_sums.transpose(1, 2, 0)
    return bx, scale, sums


def q4_k_tile_logits(
    xq: np.ndarray,
    dx: np.ndarray,
    level_sums: np.ndarray,
    table: np.ndarray,
    out: np.ndarray,
    parallel: bool,
) -> None:
    """Q4_K logits of `int8_rowdot`'s activations (`tile_activations` takes them) into `out`,
    on the tile unit; the table and `out` as `int8_rowdot` takes them.

    Raises:
        RuntimeError: this process has no tile registers (`tiles_ready` is false): the
            instructions would kill it.
    """
    if not tiles_ready():
        raise RuntimeError("q4_k_tile_logits: no AMX tile registers in this process")
    arrays = (table, *tile_activations(xq, dx, level_sums), out, F16_TO_F32, _CONFIG)
    if not parallel or table.shape[0] < 2 * ROW_BLOCK:
        _serial(*arrays)
    else:
        launch(lambda: _parallel(*arrays), lambda: _serial(*arrays))
