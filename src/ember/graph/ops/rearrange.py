"""MAX's ops that rearrange a value by composing `reshape`, slices, `broadcast_to` and `mul`:
`flatten`, `tile`, `outer`, `split`, `chunk` and `as_interleaved_complex`.

>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.float32, ["batch", "seq", 8])]) as g:
...     tokens = flatten(g.inputs[0], 0, 1)
...     halves = chunk(g.inputs[0], 2, axis=2)
>>> tokens.shape, halves[1].shape
([Dim(batch * seq), Dim(8)], [Dim('batch'), Dim('seq'), Dim(4)])
"""

from __future__ import annotations

import builtins
import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..dim import Dim, DimLike, StaticDim
from ..errors import GraphTypeError
from ..value import TensorValue
from .axis import AxisError, normalize_axis
from .broadcast_to import broadcast_to
from .constant import as_value
from .elementwise import mul
from .reshape import reshape

__all__ = ["as_interleaved_complex", "chunk", "flatten", "outer", "split", "tile"]


def as_interleaved_complex(x: Any) -> TensorValue:
    """`x`'s last axis of alternating (real, imaginary) values as pairs: `(..., d)` becomes
    `(..., d // 2, 2)` (rotary embeddings' interleaved layout).

    Raises:
        TypeError: the last dim is symbolic.
        ValueError: the last dim is odd, or `x` is a scalar.
    """
    value = as_value(x)
    last = value.shape[-1] if value.rank else None
    if last is None:
        raise ValueError("as_interleaved_complex: takes values of rank 1 or more, got a scalar")
    if not isinstance(last, StaticDim):
        raise TypeError("as_interleaved_complex: The last dimension must be static.")
    if int(last) % 2:
        raise ValueError("as_interleaved_complex: The last dimension must be divisible by 2.")
    return reshape(value, [*value.shape[:-1], int(last) // 2, 2])


def flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> TensorValue:
    """`x` with axes `start_dim` to `end_dim` (inclusive) merged into one; a scalar becomes a
    vector of one.

    Raises:
        AxisError: an axis out of range (an IndexError, as in MAX).
        ValueError: `start_dim` after `end_dim`.
    """
    value = as_value(x)
    rank = builtins.max(value.rank, 1)
    start = normalize_axis("flatten", start_dim, rank)
    end = normalize_axis("flatten", end_dim, rank)
    if start > end:
        raise ValueError(f"flatten: start_dim cannot come after end_dim ({start} > {end})")
    shape = list(value.shape) or [StaticDim(1)]
    merged = math.prod(shape[start : end + 1], start=StaticDim(1))
    return reshape(value, [*shape[:start], merged, *shape[end + 1 :]])


def tile(x: Any, repeats: Iterable[DimLike]) -> TensorValue:
    """`x` repeated `repeats[i]` times along each axis `i` (numpy's `tile` with one count per
    axis): each axis gains a new one of the count before it, broadcast, then merged.

    Raises:
        ValueError: not one count per axis, or a count below 1.
    """
    value = as_value(x)
    counts = [Dim(r) for r in repeats]
    if len(counts) != value.rank:
        raise ValueError(
            f"tile: Input rank and number of elements in repeats must match: {value.shape} and "
            f"{counts}"
        )
    if any(isinstance(c, StaticDim) and int(c) < 1 for c in counts):
        raise ValueError(f"tile: Repeats must all be positive: {counts}")
    spread = reshape(value, [d for dim in value.shape for d in (StaticDim(1), dim)])
    copies = broadcast_to(
        spread, [d for pair in zip(counts, value.shape, strict=True) for d in pair]
    )
    return reshape(copies, [c * d for c, d in zip(counts, value.shape, strict=True)])


def outer(lhs: Any, rhs: Any) -> TensorValue:
    """The outer product of two vectors: `lhs[i] * rhs[j]`, dtypes promoted as `mul` does.

    Raises:
        ValueError: either is not of rank 1.
    """
    a, b = as_value(lhs), as_value(rhs)
    if a.rank != 1 or b.rank != 1:
        raise ValueError(f"outer expected 1d-tensors as inputs, got {a.shape} and {b.shape}")
    return mul(reshape(a, [a.shape[0], 1]), reshape(b, [1, b.shape[0]]))


def split(x: Any, split_sizes: Sequence[DimLike], axis: int = 0) -> list[TensorValue]:
    """`x` cut along `axis` into pieces of `split_sizes`, which must add up to the axis (checked
    in MAX's order and words: the axis, the sum, then the signs).

    Raises:
        TypeError: a symbolic size (a `GraphTypeError`, also a `ValueError`).
        ValueError: sizes that do not add up to the axis, or a negative one.
        AxisError: `axis` out of range (an `IndexError`, as in MAX).
    """
    value = as_value(x)
    if not split_sizes:
        return []
    given = [s if isinstance(s, numbers.Integral) else Dim(s) for s in split_sizes]
    if not all(isinstance(s, numbers.Integral | StaticDim) for s in given):
        raise GraphTypeError(f"split: split sizes must be static, got {given}")
    sizes = [int(s) for s in given]
    if isinstance(axis, int) and not -value.rank <= axis < value.rank:
        raise AxisError(f"split: Axis must be in range [{-value.rank}, {value.rank}), got {axis}")
    axis = normalize_axis("split", axis, value.rank)
    if sum(sizes) != value.shape[axis]:
        raise ValueError(
            f"split: Split sizes must sum to dimension value; x.shape[axis]={value.shape[axis]!r}"
            f" != sum(sizes={sizes})"
        )
    if any(size < 0 for size in sizes):
        raise ValueError(f"split: Split sizes must be positive: sizes={sizes}")
    pieces, start = [], 0
    for size in sizes:
        index = [slice(None)] * value.rank
        index[axis] = slice(start, start + size)
        pieces.append(value[tuple(index)])
        start += size
    return pieces


def chunk(x: Any, chunks: int, axis: int = 0) -> list[TensorValue]:
    """`x` cut along `axis` into `chunks` equal pieces; the count must divide the axis (a
    static one).

    Raises:
        TypeError: `chunks` is not an int, or the axis is symbolic (a `GraphTypeError`).
        ValueError: a count that does not divide the axis.
        AxisError: `axis` out of range.
    """
    value = as_value(x)
    if isinstance(chunks, bool) or not isinstance(chunks, numbers.Integral):
        raise TypeError(f"chunk: chunks must be an int, got {chunks!r}")
    axis = normalize_axis("chunk", axis, value.rank)
    dim = value.shape[axis]
    if not isinstance(dim, StaticDim):
        raise GraphTypeError(f"chunk: the axis must be static to chunk, got {dim!r}")
    if chunks < 1 or int(dim) % chunks:
        raise ValueError(f"chunk: chunks={chunks} must statically divide the axis {dim!r}")
    return split(value, [int(dim) // chunks] * chunks, axis)
