"""Quantized LM-head logits with 8-bit activations (``int8_activations=True``): integer dot
products of the table's levels with the hidden states quantized per block of 256 values, as
llama.cpp's Q8_K activations, with float32 scales applied once per block.

Each token's hidden states are cut into blocks of 256 values; a block is ``dx * xq`` with
``dx = max|x| / 127`` and ``xq = rint(x / dx)`` in ``[-127, 127]``. Per table block (Q4_K,
Q6_K: 256 values, 16-bit products of levels and ``xq`` summed in 32-bit lanes with the
sub-block scales by AVX-512 VNNI's ``vpdpwssd``), the integer sum is converted to float32 and
scaled by ``d * dx``; Q4_K's minimums and Q6_K's offset of 32 enter through the sums of ``xq``
over each 16 values. Each row sums its blocks in one order, so a row range gives the same bits
as the full table.

Error bound: rounding moves each ``x_i`` by at most ``dx / 2 = max|x|_block / 254``, so a
logit differs from the exact ``sum_i w_i x_i`` (``w`` as gguf decodes it) by at most
``sum_blocks max|x|_block / 254 * sum_(i in block) |w_i|``, plus float32 rounding of the
scales and of the running sum over ``width / 256`` blocks (a few ulps of ``sum_i |w_i x_i|``
times that count). The integer sums are exact.
"""

from __future__ import annotations

import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import config, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .compiled.cache import jit
from .compiled.decoders.bytes import F16_TO_F32
from .launch import launch

__all__ = ["BLOCK", "INT8_FORMATS", "int8_rowdot", "quantize_activations"]

BLOCK = 256
"""Hidden values per activation scale (llama.cpp's Q8_K block)."""

ROW_BLOCK = 64
"""Rows a thread takes at a time."""

Q4_K, Q6_K = 0, 1
_KINDS = {"q4_k": Q4_K, "q6_k": Q6_K}
_BLOCK_BYTES = {Q4_K: 144, Q6_K: 210}

_I8, _I16, _I32 = ir.IntType(8), ir.IntType(16), ir.IntType(32)
_F32 = ir.FloatType()
_SUMS = ir.VectorType(_I32, 16)
_FSUMS = ir.VectorType(_F32, 16)
_PRODUCTS = ir.VectorType(_I16, 32)
_LEVELS = ir.VectorType(_I8, 64)


def _host_features() -> str:
    if config.CPU_FEATURES is not None:
        return config.CPU_FEATURES
    if config.CPU_NAME not in (None, "host"):
        return ""
    return llvm_binding.get_host_cpu_features().flatten()


INT8_FORMATS = (
    tuple(_KINDS) if {"+avx512bw", "+avx512vnni"} <= set(_host_features().split(",")) else ()
)
"""The formats with an integer kernel on this CPU (it needs AVX-512 BW and VNNI); the others
compute exactly, as without ``int8_activations``."""


def quantize_activations(hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xq, dx, sums)`` of float32 `hidden` `(tokens, width)`: int8 levels, the float32 scale
    of each block of 256 values `(tokens, width / 256)` and the sum of the levels of each 16
    values times their block's scale, in float32 `(tokens, width / 16)`. A block with a NaN or
    an infinity gets a NaN scale (its logits are NaN), an all-zero block the scale 0."""
    tokens, width = hidden.shape
    blocks = hidden.reshape(tokens, width // BLOCK, BLOCK)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        absmax = np.abs(blocks).max(axis=-1, keepdims=True)
        dx = (absmax / np.float32(127)).astype(np.float32)
        dx[~np.isfinite(absmax)] = np.nan
        levels = np.where(dx > 0, np.rint(blocks / dx), 0)
    xq = np.nan_to_num(levels).astype(np.int8).reshape(tokens, width)
    sums = xq.reshape(tokens, width // BLOCK, BLOCK // 16, 16).sum(axis=-1, dtype=np.int32)
    scaled_sums = (sums * dx).astype(np.float32).reshape(tokens, width // 16)
    return xq, np.ascontiguousarray(dx[..., 0]), scaled_sums


# ---- LLVM IR ---------------------------------------------------------------------------------


def _const(value: int, kind: ir.Type = _I32) -> ir.Constant:
    return ir.Constant(kind, value)


def _splat_bytes(value: int, count: int = 32) -> ir.Constant:
    return ir.Constant(ir.VectorType(_I8, count), [value] * count)


def _shuffle(builder, a, b, lanes):
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(_I32, len(lanes)), lanes))


def _load(builder, base, offset, kind, align=1):
    pointer = builder.bitcast(builder.gep(base, [offset]), kind.as_pointer())
    return builder.load(pointer, align=align)


def _half(builder, block, offset, f16):
    """The fp16 at ``block + offset`` as float32, through numpy's conversion table."""
    index = builder.zext(_load(builder, block, _const(offset), _I16), _I32)
    return builder.load(builder.gep(f16, [index]))


def _broadcast(builder, value, count):
    vector = builder.insert_element(
        ir.Constant(ir.VectorType(value.type, 1), None), value, _const(0)
    )
    return _shuffle(builder, vector, vector, [0] * count)


def _call(builder, name, result, arguments):
    signature = ir.FunctionType(result, [a.type for a in arguments])
    return builder.call(cgutils.get_or_insert_function(builder.module, signature, name), arguments)


def _q4_k_weights(builder, block, f16):
    """Levels (4 vectors of 64 bytes: sub-blocks 2c and 2c + 1), their 16-bit scales,
    ``-dmin * m`` per 16 values and ``d``."""
    packed = _load(builder, block, _const(4), ir.VectorType(_I8, 16))
    low = ir.Constant(ir.VectorType(ir.IntType(1), 8), [1] * 4 + [0] * 4)

    def six_bits(first, second, high_nibble):
        a = _shuffle(builder, packed, packed, first)
        b = _shuffle(builder, packed, packed, second)
        top = builder.shl(builder.lshr(b, _splat_bytes(6, 8)), _splat_bytes(4, 8))
        bottom = (
            builder.lshr(a, _splat_bytes(4, 8))
            if high_nibble
            else builder.and_(a, _splat_bytes(15, 8))
        )
        return builder.select(low, builder.and_(a, _splat_bytes(63, 8)), builder.or_(bottom, top))

    sc = builder.zext(six_bits([0, 1, 2, 3, 8, 9, 10, 11], [0, 1, 2, 3, 0, 1, 2, 3], False),
                      ir.VectorType(_I16, 8))  # fmt: skip
    m = builder.zext(six_bits([4, 5, 6, 7, 8, 9, 10, 11], [4, 5, 6, 7, 4, 5, 6, 7], True),
                     ir.VectorType(_I32, 8))  # fmt: skip
    levels, scales = [], []
    for c in range(4):
        bytes_ = _load(builder, block, _const(16 + 32 * c), ir.VectorType(_I8, 32))
        low_nibbles = builder.and_(bytes_, _splat_bytes(15))
        high_nibbles = builder.lshr(bytes_, _splat_bytes(4))
        levels.append(_shuffle(builder, low_nibbles, high_nibbles, list(range(64))))
        scales.append(_shuffle(builder, sc, sc, [2 * c] * 16 + [2 * c + 1] * 16))
    minimums = builder.uitofp(_shuffle(builder, m, m, [j // 2 for j in range(16)]), _FSUMS)
    dmin = _broadcast(builder, builder.fneg(_half(builder, block, 2, f16)), 16)
    return levels, scales, builder.fmul(dmin, minimums), _half(builder, block, 0, f16)


def _q6_k_weights(builder, block, f16):
    """Levels ``u`` in 0..63 (4 vectors of 64), their 16-bit scales, ``-32 * d * sc`` per 16
    values and ``d``."""
    sc = builder.sext(_load(builder, block, _const(192), ir.VectorType(_I8, 16)),
                      ir.VectorType(_I16, 16))  # fmt: skip
    levels, scales = [], []
    for h in range(2):
        low0 = _load(builder, block, _const(64 * h), ir.VectorType(_I8, 32))
        low1 = _load(builder, block, _const(64 * h + 32), ir.VectorType(_I8, 32))
        high = _load(builder, block, _const(128 + 32 * h), ir.VectorType(_I8, 32))
        nibbles = (
            builder.and_(low0, _splat_bytes(15)),
            builder.and_(low1, _splat_bytes(15)),
            builder.lshr(low0, _splat_bytes(4)),
            builder.lshr(low1, _splat_bytes(4)),
        )
        u = []
        for k, nibble in enumerate(nibbles):
            bits = builder.and_(builder.lshr(high, _splat_bytes(2 * k)), _splat_bytes(3))
            u.append(builder.or_(nibble, builder.shl(bits, _splat_bytes(4))))
        for pair in range(2):
            levels.append(_shuffle(builder, u[2 * pair], u[2 * pair + 1], list(range(64))))
            first = 8 * h + 4 * pair
            scales.append(_shuffle(builder, sc, sc, [first + w // 8 for w in range(32)]))
    d = _half(builder, block, 208, f16)
    offsets = builder.fmul(_broadcast(builder, builder.fmul(d, ir.Constant(_F32, -32.0)), 16),
                           builder.sitofp(sc, _FSUMS))  # fmt: skip
    return levels, scales, offsets, d


_WEIGHTS = {Q4_K: _q4_k_weights, Q6_K: _q6_k_weights}


@intrinsic
def _block_dot(typingctx, kind, row, at, xq, dx, sums, b, acc, f16):
    """Adds table block ``row[at:]``'s products with block ``b`` of every token to the token's
    16 float32 lane sums ``acc[t]``."""
    if not isinstance(kind, types.IntegerLiteral):
        return None
    weights = _WEIGHTS[kind.literal_value]

    def codegen(context, builder, sig, args):
        at, b = args[2], args[6]
        row_a, xq_a, dx_a, sums_a, acc_a, f16_a = (
            context.make_array(sig.args[i])(context, builder, args[i]) for i in (1, 3, 4, 5, 7, 8)
        )
        block = builder.gep(row_a.data, [at])
        f16 = f16_a.data
        levels, scales, per16, d = weights(builder, block, f16)
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_FSUMS, [_FSUMS] * 3), "llvm.fma.v16f32"
        )
        tokens = builder.extract_value(xq_a.shape, 0)
        width = builder.extract_value(xq_a.shape, 1)
        intp = width.type
        blocks = builder.extract_value(dx_a.shape, 1)
        sixteens = builder.extract_value(sums_a.shape, 1)
        with cgutils.for_range(builder, tokens, intp=intp) as loop:
            t = loop.index
            x_block = builder.gep(
                xq_a.data, [builder.add(builder.mul(t, width), builder.mul(b, intp(BLOCK)))]
            )
            totals = [ir.Constant(_SUMS, [0] * 16)] * 2  # two chains of vpdpwssd
            for c, (level, scale) in enumerate(zip(levels, scales, strict=True)):
                x = _load(builder, x_block, intp(64 * c), _LEVELS)
                products = _call(builder, "llvm.x86.avx512.pmaddubs.w.512", _PRODUCTS,
                                 [level, x])  # fmt: skip
                totals[c % 2] = _call(builder, "llvm.x86.avx512.vpdpwssd.512", _SUMS,
                                      [totals[c % 2], products, scale])  # fmt: skip
            scaled_sums = _load(
                builder,
                sums_a.data,
                builder.add(builder.mul(t, sixteens), builder.mul(b, intp(16))),
                _FSUMS,
                align=4,
            )
            scale_x = builder.load(builder.gep(dx_a.data, [builder.add(builder.mul(t, blocks), b)]))
            lanes = builder.bitcast(
                builder.gep(acc_a.data, [builder.mul(t, intp(16))]), _FSUMS.as_pointer()
            )
            running = builder.load(lanes, align=4)
            running = builder.call(fma, [per16, scaled_sums, running])  # minimums, offsets
            integer = builder.sitofp(builder.add(*totals), _FSUMS)
            running = builder.call(
                fma, [integer, _broadcast(builder, builder.fmul(d, scale_x), 16), running]
            )
            builder.store(running, lanes, align=4)
        return context.get_dummy_value()

    return types.none(kind, row, at, xq, dx, sums, b, acc, f16), codegen


@jit(inline="always")
def _lanes_total(acc, t):
    """Token ``t``'s 16 lane sums added in a fixed tree."""
    lanes = acc[t]
    a0 = lanes[0] + lanes[8]
    a1 = lanes[1] + lanes[9]
    a2 = lanes[2] + lanes[10]
    a3 = lanes[3] + lanes[11]
    a4 = lanes[4] + lanes[12]
    a5 = lanes[5] + lanes[13]
    a6 = lanes[6] + lanes[14]
    a7 = lanes[7] + lanes[15]
    return ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))


@jit(nogil=True)
def _span(kind, table, xq, dx, sums, out, start, stop, f16):
    block_bytes = 144 if kind == Q4_K else 210
    tokens = xq.shape[0]
    acc = np.empty((tokens, 16), np.float32)
    for r in range(start, stop):
        row = table[r]
        acc[:] = 0
        for b in range(dx.shape[1]):
            _block_dot(kind, row, b * block_bytes, xq, dx, sums, b, acc, f16)
        for t in range(tokens):
            out[t, r] = _lanes_total(acc, t)


@jit(nogil=True, parallel=True)
def _parallel(kind, table, xq, dx, sums, out, f16):
    rows = table.shape[0]
    for block in prange((rows + ROW_BLOCK - 1) // ROW_BLOCK):
        start = block * ROW_BLOCK
        _span(kind, table, xq, dx, sums, out, start, min(start + ROW_BLOCK, rows), f16)


@jit(nogil=True)
def _serial_q4_k(table, xq, dx, sums, out, f16):
    _span(Q4_K, table, xq, dx, sums, out, 0, table.shape[0], f16)


@jit(nogil=True)
def _serial_q6_k(table, xq, dx, sums, out, f16):
    _span(Q6_K, table, xq, dx, sums, out, 0, table.shape[0], f16)


@jit(nogil=True)
def _parallel_q4_k(table, xq, dx, sums, out, f16):
    _parallel(Q4_K, table, xq, dx, sums, out, f16)


@jit(nogil=True)
def _parallel_q6_k(table, xq, dx, sums, out, f16):
    _parallel(Q6_K, table, xq, dx, sums, out, f16)


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
    block_bytes = _BLOCK_BYTES[_KINDS[fmt]]
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
    xq, dx, sums = quantize_activations(hidden)
    serial, parallel_kernel = _KERNELS[fmt]
    if not parallel or table.shape[0] < 2 * ROW_BLOCK:
        serial(table, xq, dx, sums, out, F16_TO_F32)
        return
    launch(
        lambda: parallel_kernel(table, xq, dx, sums, out, F16_TO_F32),
        lambda: serial(table, xq, dx, sums, out, F16_TO_F32),
    )
