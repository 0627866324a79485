"""Device helpers every kernel shares: raw copies between addresses, non-temporal (streaming)
stores and their fence, prefetches, and the output sizes from which streaming pays.

Streaming stores skip reading each destination line before writing it, a third of the traffic
of a plain copy, and do not evict the cache for an output that would not fit in it anyway. They
are weakly ordered: a kernel that streams ends with `fence`.
"""

from __future__ import annotations

import platform

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .cache import jit
from .target import target_has

__all__ = [
    "COPY_STREAM_MIN_BYTES",
    "COPY_STREAM_MIN_ROW_BYTES",
    "DECODE_STREAM_MIN_BYTES",
    "DECODE_STREAM_MIN_ROW_BYTES",
    "HAVE_STREAM",
    "address",
    "copy_small",
    "fence",
    "memcpy",
    "prefetch",
    "prefetch_bytes",
    "stream_row",
    "stream_rows",
    "zero",
]

HAVE_STREAM = platform.machine().lower() in ("x86_64", "amd64")
"""Streaming stores, and the ``sfence`` that orders them, are used on x86-64 only."""

COPY_STREAM_MIN_BYTES = 2 * 1024 * 1024
"""Output size from which the row gather streams its rows.

The kernel alone gains from streaming above about 256 KiB (to 20 GB/s against 16 with plain
stores at 2 MiB); below a core's L2 (2 MiB) plain stores are kept, as they leave the output in
the cache for whatever reads it next.
"""

COPY_STREAM_MIN_ROW_BYTES = 512
"""Shorter rows lose with streaming copies (measured): their unaligned head and tail are a large
part."""

DECODE_STREAM_MIN_BYTES = 8 * 1024 * 1024
"""Output size from which the dequantizing gather streams its rows. Higher than for copies:
decoding, not memory, bounds it until the output no longer fits the cache a consumer would
read it from."""

DECODE_STREAM_MIN_ROW_BYTES = 256
"""Shorter decoded rows spend too much on their unaligned ends to gain from streaming."""


def _vector_lanes() -> int:
    """Lanes of i64 per store that the target compiles to one instruction (AVX-512, AVX, SSE2)."""
    if target_has("avx512f"):
        return 8
    return 4 if target_has("avx") else 2


_LANES = _vector_lanes()
_I8P = ir.IntType(8).as_pointer()
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)


@intrinsic
def address(typingctx, array):
    """The address of an array's first byte, for byte arithmetic across rows."""

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return builder.ptrtoint(data, _I64)

    return types.int64(array), codegen


def _move_int(nbytes: int):
    """An intrinsic copying one unaligned ``nbytes``-byte integer between two addresses."""

    @intrinsic
    def move(typingctx, dst, src):
        def codegen(context, builder, sig, args):
            dst, src = args
            pointer = ir.IntType(8 * nbytes).as_pointer()
            value = builder.load(builder.inttoptr(src, pointer), align=1)
            builder.store(value, builder.inttoptr(dst, pointer), align=1)
            return context.get_dummy_value()

        return types.void(types.int64, types.int64), codegen

    return move


_move8, _move4, _move2, _move1 = (_move_int(n) for n in (8, 4, 2, 1))


@jit(inline="always")
def copy_small(dst, src, nbytes):
    """Copy fewer than 64 bytes in at most ten moves: a ``memcpy`` call costs more per row."""
    end = nbytes & -8
    for k in range(0, end, 8):
        _move8(dst + k, src + k)
    if nbytes & 4:
        _move4(dst + end, src + end)
        end += 4
    if nbytes & 2:
        _move2(dst + end, src + end)
        end += 2
    if nbytes & 1:
        _move1(dst + end, src + end)


@intrinsic
def memcpy(typingctx, dst, src, nbytes):
    """``memcpy`` between two addresses: the C library's copy beats eight interleaved rows of
    plain 64-byte moves by 8-25 % on outputs that stay in the cache (measured, 8-16 KiB rows)."""

    def codegen(context, builder, sig, args):
        dst, src, nbytes = args
        cgutils.raw_memcpy(
            builder, builder.inttoptr(dst, _I8P), builder.inttoptr(src, _I8P), nbytes, 1
        )
        return context.get_dummy_value()

    return types.void(types.int64, types.int64, types.int64), codegen


@intrinsic
def zero(typingctx, dst, nbytes):
    """``memset(dst, 0, nbytes)``."""

    def codegen(context, builder, sig, args):
        dst, nbytes = args
        cgutils.memset(builder, builder.inttoptr(dst, _I8P), nbytes, 0)
        return context.get_dummy_value()

    return types.void(types.int64, types.int64), codegen


@intrinsic
def _stream_line(typingctx, dst, src):
    """Copy 64 bytes with non-temporal stores: they bypass the cache and skip reading the
    destination line first, and need a 64-byte aligned ``dst``. One AVX-512 store, or split."""

    def codegen(context, builder, sig, args):
        dst, src = args
        vec = ir.VectorType(_I64, _LANES).as_pointer()
        for part in range(8 // _LANES):
            step = ir.Constant(_I64, part * _LANES * 8)
            value = builder.load(builder.inttoptr(builder.add(src, step), vec), align=1)
            target = builder.inttoptr(builder.add(dst, step), vec)
            store = builder.store(value, target, align=_LANES * 8)
            store.set_metadata("nontemporal", builder.module.add_metadata([_I32(1)]))
        return context.get_dummy_value()

    return types.void(types.int64, types.int64), codegen


@intrinsic
def fence(typingctx):
    """``sfence``: makes the weakly ordered non-temporal stores visible before later stores.

    LLVM lowers its own ``fence`` to ``lock or`` on x86-64, which the ISA does not document as
    ordering non-temporal stores; elsewhere streaming is off and a plain fence stands in.
    """

    def codegen(context, builder, sig, args):
        if HAVE_STREAM:
            sfence = ir.FunctionType(ir.VoidType(), [])
            builder.call(
                cgutils.get_or_insert_function(builder.module, sfence, "llvm.x86.sse.sfence"), []
            )
        else:
            builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


def prefetch_bytes(builder: ir.IRBuilder, at: ir.Value, count: int) -> None:
    """LLVM IR asking for the cache lines of ``count`` bytes from pointer ``at`` (never
    faults): one every 64 bytes, and one at the last byte for bytes not aligned to lines."""
    fnty = ir.FunctionType(ir.VoidType(), [_I8P, _I32, _I32, _I32])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
    start = builder.bitcast(at, _I8P)
    for offset in (*range(0, count, 64), count - 1):
        address = builder.gep(start, [_I32(offset)])
        builder.call(fn, [address, _I32(0), _I32(3), _I32(1)])


@intrinsic
def prefetch(typingctx, address):
    """Hint the cache to start loading the line at ``address`` (no fault if it is invalid)."""

    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(ir.VoidType(), [_I8P, _I32, _I32, _I32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        read, keep, data = _I32(0), _I32(3), _I32(1)
        builder.call(fn, [builder.inttoptr(args[0], _I8P), read, keep, data])
        return context.get_dummy_value()

    return types.void(types.int64), codegen


@jit()
def stream_row(dst, src, nbytes):
    """Copy ``nbytes`` from ``src`` to ``dst``: whole aligned lines streamed, the ends plain."""
    head = min((-dst) & 63, nbytes)
    memcpy(dst, src, head)
    end = head + ((nbytes - head) & -64)
    for k in range(head, end, 64):
        _stream_line(dst + k, src + k)
    memcpy(dst + end, src + end, nbytes - end)


STREAM_GROUP = 8
"""Rows `stream_rows` streams together. One 16 KiB row at a time reaches 14-16 GB/s against a
20-21 GB/s copy on two cores; eight interleaved rows keep more streams in flight and reach
17-20 GB/s."""

_BLOCK = 512
"""Bytes of one row copied before moving to the next row of the group."""


@jit(inline="always")
def stream_rows(dsts, srcs, heads, count, nbytes):
    """Stream ``count`` rows of ``nbytes`` from ``srcs`` to ``dsts``, interleaved in blocks.

    Rows move in 64-byte units; each row first copies its head up to a 64-byte aligned
    destination in smaller moves (``heads`` is scratch space for where its units start), and
    its last partial unit that way too.
    """
    for r in range(count):
        heads[r] = min((-dsts[r]) & 63, nbytes)
        copy_small(dsts[r], srcs[r], heads[r])
    for block in range(0, nbytes, _BLOCK):
        for r in range(count):
            dst, src = dsts[r] + heads[r], srcs[r] + heads[r]
            stop = min(block + _BLOCK, (nbytes - heads[r]) & -64)
            for k in range(block, stop, 64):
                _stream_line(dst + k, src + k)
    for r in range(count):
        end = heads[r] + ((nbytes - heads[r]) & -64)
        copy_small(dsts[r] + end, srcs[r] + end, nbytes - end)
