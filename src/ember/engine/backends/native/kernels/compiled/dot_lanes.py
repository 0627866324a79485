"""The one summation order of the head's dot products, as LLVM IR pieces the kernels share.

A dot product keeps ``LANES`` running sums (lane ``j`` takes the elements ``i = j mod LANES``
in turn), each step one fused multiply-add where the CPU has them, else a product then a sum;
the lanes are then added in a fixed tree. Every kernel that builds its sums from these pieces
(the dense rows of `rowdot`, the decoded blocks of `quantized_rowdot`) gives a row the same
bits, whichever rows, tokens or threads a call covers.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils

from .target import target_has

__all__ = ["F32", "HAS_FMA", "LANES", "VECTOR", "lane_indices", "multiply_add", "sum_lanes"]

LANES = 32
"""Running sums per dot product (two AVX-512 registers of float32): enough independent sums
to keep the multiply-adds in flight for one token."""

F32 = ir.FloatType()
VECTOR = ir.VectorType(F32, LANES)


HAS_FMA = target_has("fma")


def multiply_add(builder: ir.IRBuilder, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """``x * w + acc``: one fused multiply-add where the CPU has them (never an unfused pair
    on one machine and a fused one on another within a run)."""
    if HAS_FMA:
        suffix = f"v{x.type.count}f32" if isinstance(x.type, ir.VectorType) else "f32"
        signature = ir.FunctionType(x.type, [x.type] * 3)
        fma = cgutils.get_or_insert_function(builder.module, signature, f"llvm.fma.{suffix}")
        return builder.call(fma, [x, w, acc])
    return builder.fadd(builder.fmul(x, w), acc)


def sum_lanes(builder: ir.IRBuilder, vector: ir.Value) -> ir.Value:
    """The lanes added in a fixed tree: halves added lane by lane until one is left."""
    width = LANES
    while width > 1:
        width //= 2
        low, high = (
            builder.shuffle_vector(vector, vector, lane_indices(first, width))
            for first in (0, width)
        )
        vector = builder.fadd(low, high)
    return builder.extract_element(vector, ir.Constant(ir.IntType(32), 0))


def lane_indices(first: int, count: int) -> ir.Constant:
    """``first, first + 1, ..., first + count - 1`` as a shuffle mask."""
    return ir.Constant(ir.VectorType(ir.IntType(32), count), list(range(first, first + count)))
