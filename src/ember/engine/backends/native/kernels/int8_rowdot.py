"""Quantized LM-head logits with 8-bit activations (``int8_activations=True``): integer dot
products of the table's levels with the hidden states quantized per block of 256 values, as
llama.cpp's Q8_K activations, with float32 scales applied once per sub-block.

Each token's hidden states are cut into blocks of 256 values; a block is ``dx * xq`` with
``dx = max|x| / 127`` and ``xq = rint(x / dx)`` in ``[-127, 127]``, stored in the order the
kernel reads (each 64-byte vector holds 4 values of each group of 16).

The kernel works as a matrix product: a tile of `ROWS` rows is decoded once into unsigned
levels (Q4_K 0..15, Q6_K 0..63) and float32 scales, then dotted with `TOKENS` tokens at a
time, whose float32 lane sums per row stay in registers over the row's blocks (a call
with fewer tokens decodes one row at a time in registers instead). Per block, AVX-512 VNNI's
``vpdpbusd`` sums the products of levels and ``xq`` of each group of 16 values into one
32-bit lane (exact). Q6_K's lane is a sub-block: it is converted to float32 and added times
``d * sc * dx`` (the sub-block's scale, exact in float32, times the token's), its offset of
32 entering the integer sum as ``-32 * sum(xq)``. Q4_K's two lanes of a sub-block of 32 are
added first, so that two tokens share one vector of float32 work; its minimums add
``-dmin * m`` times ``dx * sum(xq)`` of the sub-block. A logit adds its lanes in a fixed
tree: every row and token gets the same operations whatever rows and tokens a call covers.

From `TILE_MIN_TOKENS` tokens, where the CPU has AMX and Linux grants its tile registers, Q4_K
runs on the tile unit (`amx_rowdot`): the same integer sums and the same float32 work in the
same order, so the same logits bit for bit (NaN logits aside: NaN in both, which NaN not
specified).

Without VNNI (AVX2), ``vpmaddubsw`` then ``vpmaddwd`` make the same exact sums, and the levels
are made from the bytes as stored, regrouped by unpacks that never cross 128-bit halves (the
activations laid out to match); the sums are put back in the VNNI layout's lane order before
any float work, so the logits are the same bits on either CPU. Under 4 tokens each block asks
for the next row's while it is decoded.

Error bound: rounding moves each ``x_i`` by at most ``dx / 2 = max|x|_block / 254``, so a
logit differs from the exact ``sum_i w_i x_i`` (``w`` as gguf decodes it) by at most
``sum_blocks max|x|_block / 254 * sum_(i in block) |w_i|``, plus float32 rounding of the
scale products and of each lane's running sum over ``width / 256`` blocks (a few ulps of
``sum_i |w_i x_i|``, counting Q4_K's ``d * sc * q`` and ``dmin * m`` terms apart, times that
count). The integer sums are exact. The bound is for blocks whose scale ``dx`` is a normal
float32 (max ``|x|`` from ``127 * 2**-126``, about 1.5e-36, up): below, ``dx`` and its
products are subnormal and keep fewer bits, so their rounding is no longer a few ulps.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .amx_rowdot import AMX_FORMATS, TILE_MIN_TOKENS, q4_k_tile_logits, tiles_ready
from .compiled.cache import jit
from .compiled.decoders.bytes import F16_TO_F32
from .compiled.device import prefetch_bytes
from .compiled.int8_blocks import (
    AVX2_LANES,
    BLOCK,
    BLOCK_BYTES,
    DECODERS,
    F32,
    FSUMS,
    I8,
    I32,
    Q4_K,
    Q6_K,
    SUMS,
    VNNI,
    VNNI_LANE_AT,
    array_data,
    broadcast,
    call_intrinsic,
    constant,
    load_at,
    pointer_at,
    shuffle,
)
from .compiled.target import target_has
from .launch import launch

__all__ = ["BLOCK", "INT8_FORMATS", "int8_rowdot", "quantize_activations"]

GROUP = 16
"""Values per 32-bit integer lane: one scale (and Q4_K minimum) applies to each."""

ROWS = 3
"""Rows decoded together; each token's levels are loaded once for them."""

TOKENS = 4
"""Tokens dotted together with a tile's rows (a call's last tokens go one at a time)."""

ROW_BLOCK = 96


"""Rows a thread takes at a time."""

_KINDS = {"q4_k": Q4_K, "q6_k": Q6_K}
_LEVELS = ir.VectorType(I8, 64)

INT8_FORMATS = tuple(_KINDS) if VNNI or target_has("avx2") else ()
"""The formats with an integer kernel on this CPU (it needs AVX2, and is fastest with AVX-512
VNNI; the integer sums, and so the logits, are the same bits either way); without AVX2 they
compute exactly, as without ``int8_activations``."""


def quantize_activations(hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xq, dx, sums)`` of float32 `hidden` `(tokens, width)`: int8 levels, the float32 scale
    of each block of 256 values `(tokens, width / 256)` and the int32 sum of the levels of each
    16 values `(tokens, width / 16)`. A block with a NaN or an infinity gets a NaN scale (its
    logits are NaN), an all-zero block the scale 0. A scale below float32's normal range
    (blocks whose max ``|x|`` is under ``127 * 2**-126``) is rounded up where rounding to
    nearest fell short, so that no level passes 127 (as int8 it would change sign)."""
    tokens, width = hidden.shape
    blocks = hidden.reshape(tokens, width // BLOCK, BLOCK)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        absmax = np.abs(blocks).max(axis=-1, keepdims=True)
        dx = (absmax / np.float32(127)).astype(np.float32)
        short = (dx < np.finfo(np.float32).tiny) & (dx * np.float32(127) < absmax)  # exact
        dx[short] = np.nextafter(dx[short], np.float32(np.inf))
        dx[~np.isfinite(absmax)] = np.nan
        levels = np.where(dx > 0, np.rint(blocks / dx), 0)
    xq = np.nan_to_num(levels).astype(np.int8).reshape(tokens, width)
    sums = xq.reshape(tokens, width // GROUP, GROUP).sum(axis=-1, dtype=np.int32)
    return xq, np.ascontiguousarray(dx[..., 0]), sums


def q4_k_level_sums(sums: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Q4_K's ``dx * sum(xq)`` of each sub-block of 32 values, `(tokens, blocks, 8)` float32,
    from `quantize_activations`' sums and scales: what a row's minimums multiply (rounded
    once, from the exact product, for every kernel alike)."""
    tokens = sums.shape[0]
    halves = sums.reshape(tokens, -1, 8, 2).sum(axis=-1, dtype=np.int32)
    return (halves * dx[..., None]).astype(np.float32)


def _kernel_activations(kind: int, hidden: np.ndarray):
    """``(xq, dx, per_group)`` as the kernel reads them, block-major so that a block's tokens
    lie together: ``xq`` `(blocks, tokens, 256)` in the order of the levels `int8_blocks`
    decodes, ``dx`` `(blocks, tokens)`, and `(blocks, tokens, 16)`: Q6_K's ``-32 * sum(xq)``
    per group of 16 (int32), Q4_K's ``dx * sum(xq)`` per sub-block of 32, then ``dx`` 8
    times (float32)."""
    xq, dx, sums = quantize_activations(hidden)
    tokens, width = xq.shape
    blocks = width // BLOCK
    if kind == Q4_K:  # lane j: sub-block j % 8, its half j // 8
        order = xq.reshape(tokens, blocks, 8, 2, 4, 4).transpose(1, 0, 4, 3, 2, 5)
        scaled = q4_k_level_sums(sums, dx).transpose(1, 0, 2)
        dx = np.ascontiguousarray(dx.T)
        per_group = np.concatenate([scaled, np.repeat(dx[..., None], 8, axis=-1)], axis=-1)
    else:  # lane j: values 16 j ..
        sums = sums.reshape(tokens, blocks, BLOCK // GROUP).transpose(1, 0, 2)
        dx = np.ascontiguousarray(dx.T)
        order = xq.reshape(tokens, blocks, BLOCK // 16, 4, 4).transpose(1, 0, 3, 2, 4)
        per_group = sums * np.int32(-32)
    order = order.reshape(blocks, tokens, 4, 16, 4)  # (block, token, vector, lane, byte)
    if not VNNI:
        order = order[:, :, :, AVX2_LANES[kind]]
    return (
        np.ascontiguousarray(order.reshape(blocks, tokens, BLOCK)),
        dx,
        np.ascontiguousarray(per_group),
    )


# ---- LLVM IR ---------------------------------------------------------------------------------


@intrinsic
def _decode_block(typingctx, kind, row, at, levels, scales, minimums, slot, f16):
    """Decodes table block ``row[at:]`` into ``levels[256 * slot:]`` and its group scales
    (and Q4_K's minimums) into ``scales[16 * slot:]`` (``minimums[16 * slot:]``)."""
    if not isinstance(kind, types.IntegerLiteral):
        return None
    decode = DECODERS[kind.literal_value]

    def codegen(context, builder, sig, args):
        row_p, levels_p, scales_p, minimums_p, f16_p = (
            array_data(context, builder, sig.args[i], args[i]) for i in (1, 3, 4, 5, 7)
        )
        at, slot = args[2], args[6]
        intp = slot.type
        vectors, group_scales, group_minimums = decode(builder, builder.gep(row_p, [at]), f16_p)
        start = builder.mul(slot, intp(BLOCK))
        for k, vector in enumerate(vectors):
            target = pointer_at(builder, levels_p, builder.add(start, intp(64 * k)), SUMS)
            builder.store(vector, target, align=1)
        groups = builder.mul(slot, intp(BLOCK // GROUP))
        builder.store(group_scales, pointer_at(builder, scales_p, groups, FSUMS), align=4)
        if group_minimums is not None:
            builder.store(group_minimums, pointer_at(builder, minimums_p, groups, FSUMS), align=4)
        return context.get_dummy_value()

    return types.none(kind, row, at, levels, scales, minimums, slot, f16), codegen


def _lane_total(builder, lanes, first=0, width=16):
    """Lanes ``first .. first + width - 1`` added in a fixed tree: halves, quarters, ..."""
    while width > 1:
        width //= 2
        lanes = builder.fadd(
            shuffle(builder, lanes, lanes, list(range(first, first + width))),
            shuffle(builder, lanes, lanes, list(range(first + width, first + 2 * width))),
        )
        first = 0
    return builder.extract_element(lanes, constant(0))


def _vpdpbusd(builder, start, levels, x):
    """``start`` plus the 4-byte products of `levels` and `x`, in two chains (the next
    product need not wait for these)."""
    chains = [start, ir.Constant(SUMS, [0] * 16)]
    for k in range(4):
        chains[k % 2] = _dot_bytes(builder, chains[k % 2], levels[k], x[k])
    return builder.add(*chains)


def _lane_sums(builder, kind, start, levels, x):
    """``start`` plus the integer sums of `levels` and `x`, lane ``j`` that of the VNNI
    layout's lane ``j``."""
    if VNNI:
        return _vpdpbusd(builder, start, levels, x)
    sums = _vpdpbusd(builder, ir.Constant(SUMS, [0] * 16), levels, x)
    return builder.add(start, shuffle(builder, sums, sums, list(VNNI_LANE_AT[kind])))


def _dot_bytes(builder, total, levels, x):
    """``total`` plus, in each 32-bit lane, the sum of the products of its 4 unsigned
    `levels` and signed `x` bytes (``vpdpbusd``). Without VNNI: ``vpmaddubsw`` adds pairs of
    products into 16 bits, which never saturate here (levels <= 63, ``|x| <= 127``: at most
    16002), and ``vpmaddwd`` by ones adds pairs of those: the same exact sums."""
    if VNNI:
        return call_intrinsic(builder, "llvm.x86.avx512.vpdpbusd.512", SUMS, [total, levels, x])
    words = ir.VectorType(ir.IntType(16), 16)
    ones = ir.Constant(words, [1] * 16)
    halves = []
    for h in range(2):
        lanes = list(range(32 * h, 32 * h + 32))
        level_half, x_half = (shuffle(builder, v, v, lanes) for v in (levels, x))
        pairs = call_intrinsic(builder, "llvm.x86.avx2.pmadd.ub.sw", words, [level_half, x_half])
        quads = call_intrinsic(
            builder, "llvm.x86.avx2.pmadd.wd", ir.VectorType(I32, 8), [pairs, ones]
        )
        halves.append(quads)
    return builder.add(total, shuffle(builder, *halves, list(range(16))))


def _emit_tile(context, builder, q4_k, rows, count, weights, arrays, first, out_p):
    """The logits of `rows` rows and `count` tokens from ``first`` into ``out_p[r * count +
    t]``; ``weights(b)`` gives each row's block ``b`` as (levels, scales, minimums).

    Q4_K takes tokens in pairs (the last alone pairs with itself): lanes ``j`` and ``j + 8``
    share a sub-block, so one token's 16 integer lanes fold into 8, and a pair's float32
    work is one vector: lanes 0..7 the first token's, 8..15 the second's. Q6_K keeps 16
    lanes (16 sub-blocks) per token."""
    xq_p, dx_p, group_p = (array_data(context, builder, kind, value) for kind, value in arrays)
    dx_type, dx_value = arrays[1]
    blocks, all_tokens = cgutils.unpack_tuple(
        builder, context.make_array(dx_type)(context, builder, dx_value).shape
    )
    intp = first.type
    fma = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(FSUMS, [FSUMS] * 3), "llvm.fma.v16f32"
    )
    if q4_k:
        groups = [(t, min(t + 1, count - 1)) for t in range(0, count, 2)]
    else:
        groups = [(t,) for t in range(count)]
    zeros = ir.Constant(FSUMS, [0.0] * 16)
    sums = [[cgutils.alloca_once_value(builder, zeros) for _ in groups]
            for _ in range(rows)]  # fmt: skip
    eight = ir.VectorType(F32, 8)
    with cgutils.for_range(builder, blocks, intp=intp) as loop:
        b = loop.index

        def token_at(t):
            return builder.add(builder.mul(b, all_tokens), builder.add(first, intp(t)))

        def x_of(t):
            at = builder.mul(token_at(t), intp(BLOCK))
            return [
                load_at(builder, xq_p, builder.add(at, intp(64 * k)), _LEVELS) for k in range(4)
            ]

        row_levels, row_scales, row_minimums = weights(b)
        for g, group in enumerate(groups):
            xs = {t: x_of(t) for t in group}
            if q4_k:
                halves = [
                    [load_at(builder, group_p, builder.add(builder.mul(token_at(t), intp(16)),
                                                         intp(8 * h)), eight, align=4)
                     for t in group]
                    for h in range(2)
                ]  # fmt: skip
                level_sums, scale_x = (shuffle(builder, *pair, list(range(16))) for pair in
                                       (halves[0], halves[1]))  # fmt: skip
            else:
                token = token_at(group[0])
                scale_x = broadcast(builder, builder.load(builder.gep(dx_p, [token])))
                start = load_at(builder, group_p, builder.mul(token, intp(16)), SUMS, align=4)
            for r in range(rows):
                if q4_k:  # the pairs' shuffles also put AVX2's lanes back in order
                    none = ir.Constant(SUMS, [0] * 16)
                    totals = {t: _vpdpbusd(builder, none, row_levels[r], xs[t]) for t in group}
                    a, c = (totals[t] for t in group)
                    at = VNNI_LANE_AT[Q4_K]
                    low = shuffle(builder, a, c, [*at[:8], *(16 + at[:8])])
                    high = shuffle(builder, a, c, [*at[8:], *(16 + at[8:])])
                    total = builder.add(low, high)
                else:
                    total = _lane_sums(builder, Q6_K, start, row_levels[r], xs[group[0]])
                running = builder.load(sums[r][g])
                scale = builder.fmul(row_scales[r], scale_x)
                running = builder.call(fma, [builder.sitofp(total, FSUMS), scale, running])
                if q4_k:
                    running = builder.call(fma, [row_minimums[r], level_sums, running])
                builder.store(running, sums[r][g])
    for r in range(rows):
        for g, group in enumerate(groups):
            lanes = builder.load(sums[r][g])
            for half, t in enumerate(group):
                total = (_lane_total(builder, lanes, 8 * half, 8) if q4_k
                         else _lane_total(builder, lanes))  # fmt: skip
                builder.store(total, builder.gep(out_p, [intp(r * count + t)]))


def _literals(*values) -> bool:
    return all(isinstance(value, types.IntegerLiteral) for value in values)


@intrinsic
def _tile(typingctx, kind, tokens, levels, scales, minimums, xq, dx, per_group, first, out):
    """``out[r * tokens + t]``: the logit of decoded row ``r < ROWS`` (`_decode_block`'s slot
    ``b * ROWS + r`` for block ``b``) and token ``first + t``."""
    if not _literals(kind, tokens):
        return None
    q4_k = kind.literal_value == Q4_K

    def codegen(context, builder, sig, args):
        levels_p, scales_p, minimums_p, out_p = (
            array_data(context, builder, sig.args[i], args[i]) for i in (2, 3, 4, 9)
        )
        intp = args[8].type

        def weights(b):
            row_levels, row_scales, row_minimums = [], [], []
            for r in range(ROWS):
                slot = builder.add(builder.mul(b, intp(ROWS)), intp(r))
                at = builder.mul(slot, intp(BLOCK))
                row_levels.append([load_at(builder, levels_p, builder.add(at, intp(64 * k)),
                                         _LEVELS) for k in range(4)])  # fmt: skip
                at = builder.mul(slot, intp(BLOCK // GROUP))
                row_scales.append(load_at(builder, scales_p, at, FSUMS, align=4))
                if q4_k:
                    row_minimums.append(load_at(builder, minimums_p, at, FSUMS, align=4))
            return row_levels, row_scales, row_minimums

        arrays = [(sig.args[i], args[i]) for i in (5, 6, 7)]
        _emit_tile(
            context, builder, q4_k, ROWS, tokens.literal_value, weights, arrays, args[8], out_p
        )
        return context.get_dummy_value()

    return (
        types.none(kind, tokens, levels, scales, minimums, xq, dx, per_group, first, out),
        codegen,
    )


@intrinsic
def _fused_tile(typingctx, kind, tokens, row, xq, dx, per_group, first, out, f16):
    """`_tile` for one row of the table, decoded block by block in registers: calls with
    fewer than `TOKENS` tokens, where decoding into a buffer would not pay (and several rows
    read at once stream from memory slower than one)."""
    if not _literals(kind, tokens):
        return None
    q4_k, decode = kind.literal_value == Q4_K, DECODERS[kind.literal_value]
    block_bytes = BLOCK_BYTES[kind.literal_value]

    def codegen(context, builder, sig, args):
        row_p, out_p, f16_p = (
            array_data(context, builder, sig.args[i], args[i]) for i in (2, 7, 8)
        )
        intp = args[6].type
        row_bytes = builder.extract_value(
            context.make_array(sig.args[2])(context, builder, args[2]).shape, 0
        )

        def weights(b):
            block = builder.gep(row_p, [builder.mul(b, intp(block_bytes))])
            prefetch_bytes(builder, builder.gep(block, [row_bytes]), block_bytes)  # next row's
            levels, scales, minimums = decode(builder, block, f16_p)
            return [[builder.bitcast(v, _LEVELS) for v in levels]], [scales], [minimums]

        arrays = [(sig.args[i], args[i]) for i in (3, 4, 5)]
        _emit_tile(context, builder, q4_k, 1, tokens.literal_value, weights, arrays, args[6], out_p)
        return context.get_dummy_value()

    return types.none(kind, tokens, row, xq, dx, per_group, first, out, f16), codegen


@jit(nogil=True)
def _fused_span(kind, table, xq, dx, per_group, out, start, stop, f16):
    tokens = dx.shape[1]
    logits = np.empty(TOKENS, np.float32)
    for r in range(start, stop):
        if tokens == 1:
            _fused_tile(kind, 1, table[r], xq, dx, per_group, 0, logits, f16)
        elif tokens == 2:
            _fused_tile(kind, 2, table[r], xq, dx, per_group, 0, logits, f16)
        else:
            _fused_tile(kind, 3, table[r], xq, dx, per_group, 0, logits, f16)
        for t in range(tokens):
            out[t, r] = logits[t]


@jit(nogil=True)
def _span(kind, table, xq, dx, per_group, out, start, stop, f16):
    block_bytes = 144 if kind == Q4_K else 210
    blocks, tokens = dx.shape
    if tokens < TOKENS:
        _fused_span(kind, table, xq, dx, per_group, out, start, stop, f16)
        return
    levels = np.empty(blocks * ROWS * BLOCK, np.uint8)
    scales = np.empty(blocks * ROWS * (BLOCK // GROUP), np.float32)
    minimums = np.empty_like(scales)
    logits = np.empty(ROWS * TOKENS, np.float32)
    for first_row in range(start, stop, ROWS):
        rows = min(ROWS, stop - first_row)
        for r in range(ROWS):
            row = table[first_row + min(r, rows - 1)]  # a short tile repeats its last row
            for b in range(blocks):
                _decode_block(kind, row, b * block_bytes, levels, scales, minimums,
                              b * ROWS + r, f16)  # fmt: skip
        t = 0
        while t + TOKENS <= tokens:
            _tile(kind, TOKENS, levels, scales, minimums, xq, dx, per_group, t, logits)
            for r in range(rows):
                for i in range(TOKENS):
                    out[t + i, first_row + r] = logits[r * TOKENS + i]
            t += TOKENS
        while t < tokens:
            _tile(kind, 1, levels, scales, minimums, xq, dx, per_group, t, logits)
            for r in range(rows):
                out[t, first_row + r] = logits[r]
            t += 1


@jit(nogil=True, parallel=True)
def _parallel(kind, table, xq, dx, per_group, out, f16):
    rows = table.shape[0]
    for block in prange((rows + ROW_BLOCK - 1) // ROW_BLOCK):
        start = block * ROW_BLOCK
        _span(kind, table, xq, dx, per_group, out, start, min(start + ROW_BLOCK, rows), f16)


@jit(nogil=True)
def _serial_q4_k(table, xq, dx, per_group, out, f16):
    _span(Q4_K, table, xq, dx, per_group, out, 0, table.shape[0], f16)


@jit(nogil=True)
def _serial_q6_k(table, xq, dx, per_group, out, f16):
    _span(Q6_K, table, xq, dx, per_group, out, 0, table.shape[0], f16)


@jit(nogil=True)
def _parallel_q4_k(table, xq, dx, per_group, out, f16):
    _parallel(Q4_K, table, xq, dx, per_group, out, f16)


@jit(nogil=True)
def _parallel_q6_k(table, xq, dx, per_group, out, f16):
    _parallel(Q6_K, table, xq, dx, per_group, out, f16)


_KERNELS = {"q4_k": (_serial_q4_k, _parallel_q4_k), "q6_k": (_serial_q6_k, _parallel_q6_k)}


def int8_rowdot(
    fmt: str, hidden: np.ndarray, table: np.ndarray, out: np.ndarray, parallel: bool = True
) -> None:
    """``out[t, v] ~ dot(hidden[t], decode(table[v]))`` with `hidden` quantized to 8 bits per
    block of 256 (the module's bound); arrays as `quantized_rowdot` takes them.

    Raises:
        ValueError: `fmt` is not one of `INT8_FORMATS`, or the arrays do not fit together.
    """
    if fmt not in INT8_FORMATS:
        raise ValueError(f"int8_rowdot: no integer kernel for {fmt!r}; one of {INT8_FORMATS}")
    kind = _KINDS[fmt]
    block_bytes = BLOCK_BYTES[kind]
    if (
        hidden.ndim != 2
        or table.shape[1] % block_bytes
        or hidden.shape[1] != table.shape[1] // block_bytes * BLOCK
        or out.shape != (hidden.shape[0], table.shape[0])
    ):
        raise ValueError(
            f"int8_rowdot: hidden {hidden.shape}, {fmt} table {table.shape} and out "
            f"{out.shape} do not fit ((tokens, width), (vocab, row bytes), (tokens, vocab))"
        )
    if out.size == 0:
        return
    shifts = _shifts(hidden)
    if shifts is not None:
        hidden = np.ldexp(hidden, -shifts[:, None])
    if hidden.shape[0] >= TILE_MIN_TOKENS and fmt in AMX_FORMATS and tiles_ready():
        xq, dx, sums = quantize_activations(hidden)
        q4_k_tile_logits(xq, dx, q4_k_level_sums(sums, dx), table, out, parallel)
    else:
        _vector_logits(fmt, hidden, table, out, parallel)
    if shifts is not None:
        out[...] = np.ldexp(out, shifts[:, None])


def _vector_logits(fmt: str, hidden: np.ndarray, table: np.ndarray, out, parallel: bool) -> None:
    """The vector kernel's logits (AVX-512 VNNI, or AVX2), as `int8_rowdot` takes them."""
    xq, dx, per_group = _kernel_activations(_KINDS[fmt], hidden)
    serial, parallel_kernel = _KERNELS[fmt]
    if not parallel or table.shape[0] < 2 * ROW_BLOCK:
        serial(table, xq, dx, per_group, out, F16_TO_F32)
    else:
        launch(
            lambda: parallel_kernel(table, xq, dx, per_group, out, F16_TO_F32),
            lambda: serial(table, xq, dx, per_group, out, F16_TO_F32),
        )


_LARGEST = 100
"""Tokens whose values reach ``2**_LARGEST`` are scaled down by a power of two first."""


def _shifts(hidden: np.ndarray) -> np.ndarray | None:
    """Per token, the power of two that brings its largest finite value under
    ``2**_LARGEST`` (0 for most), or None where every token is under it: near float32's
    largest values the scale products overflowed to inf (or NaN) before they cancelled.
    Scaling by a power of two is exact where values stay normal floats, so the kernel then
    makes the same levels and products, each scaled, and the logits scaled back are the bits
    it would give without overflow; a block of the same token more than ``2**100`` times
    smaller may fall below the normal range and keep fewer bits of its levels (its share of
    the logit is then too small to show)."""
    magnitudes = np.abs(hidden)
    if magnitudes.size == 0 or magnitudes.max() < np.float32(2.0**_LARGEST):
        return None  # every call but those near float32's range (NaN and inf go on below)
    with np.errstate(invalid="ignore"):
        largest = np.max(np.where(np.isfinite(magnitudes), magnitudes, 0), axis=1)
    if not (largest >= np.float32(2.0**_LARGEST)).any():
        return None
    return np.maximum(np.frexp(largest)[1] - _LARGEST, 0).astype(np.int32)
