"""`embedding_bag(table, ids, offsets, per_sample_weights)`: rows of a table looked up by id
and pooled (sum, mean or max) per bag, as PyTorch's `F.embedding_bag` does.

Bags are 1-D `ids` cut by `offsets` (bag `b` is `ids[offsets[b]:offsets[b + 1]]`, the last one
running to the end of the ids, or to the last offset with `include_last_offset`), or the rows
of 2-D `ids`, one fixed-length bag each. An empty bag pools to zeros, in every mode.

Numbers: each bag is accumulated in float32, in bag order, then divided by its count (mean) or
rounded once to a bfloat16/float16 table's dtype. Against an exact sum `s` of `n` terms `x_i`
(weighted: `w_i * x_i`), the float32 result is within `n * 2**-24 * sum |x_i|` (plus the final
rounding, for a narrow table); max is exact and takes IEEE 754-2019's `maximum`, whatever the
rows' order, so that every backend and sharding agrees: NaN in any pooled row makes its column
NaN wherever the row stands in the bag (as `numpy.max` and `torch.max` do; torch's
`embedding_bag` keeps a NaN only where it comes first), and +0 is above -0 (torch's
`embedding_bag` keeps the zero that comes first).

>>> from ember.graph import Graph, TensorType, Weight
>>> table = Weight("table", DType.float32, [1000, 64])
>>> ids, offsets = TensorType(DType.int64, ["n"]), TensorType(DType.int64, ["bags"])
>>> with Graph("g", input_types=[ids, offsets]) as g:
...     bags = embedding_bag(table, g.inputs[0], g.inputs[1], mode="mean")
>>> bags.shape, bags.dtype
([Dim('bags'), Dim(64)], float32)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ember.dtype import DType

from ..dim import StaticDim
from ..graph import current_graph
from ..op import Op
from ..quantization import QuantizationEncoding
from ..type import TensorType
from ..value import TensorValue
from .constant import CONSTANT, as_value
from .gather import index_value

__all__ = [
    "BAG_MODES",
    "BAG_OUT_OF_RANGE",
    "EMBEDDING_BAG",
    "BagMode",
    "bag_bounds",
    "check_dense_table_dtype",
    "check_weights_shape",
    "embedding_bag",
    "offsets_error",
]

EMBEDDING_BAG = Op("embedding_bag", lookup=True)

BagMode = Literal["sum", "mean", "max"]
BAG_MODES: tuple[str, ...] = ("sum", "mean", "max")
BAG_OUT_OF_RANGE: tuple[str, ...] = ("error", "zero", "clamp")

DENSE_TABLE_DTYPES = (DType.float32, DType.bfloat16, DType.float16)

OFFSET_NOT_ZERO, OFFSET_DECREASES, OFFSET_PAST_IDS, NO_OFFSETS = 0, 1, 2, 3
"""What is wrong with offsets, as `offsets_error` and the backends' checks code it."""


def embedding_bag(
    table: Any,
    ids: Any,
    offsets: Any = None,
    per_sample_weights: Any = None,
    *,
    mode: BagMode = "sum",
    include_last_offset: bool = False,
    padding_idx: int | None = None,
    out_of_range: Literal["error", "zero", "clamp"] = "error",
    quantization_encoding: QuantizationEncoding | None = None,
    out_dtype: DType | None = None,
) -> TensorValue:
    """Pooled rows of `table` (vocab, hidden), one vector per bag: `(bags, hidden)`.

    - `table`: float32, bfloat16 or float16 rows; or uint8 rows of whole blocks of
      `quantization_encoding` (taken from a `Weight` that declares one), decoded to float32.
    - Rows are pooled in float32; the result is float32, except for a bfloat16 or float16
      table: its dtype (as torch). `out_dtype` (float32, bfloat16 or float16) asks for
      another: the float32 pooling rounded once to it (FBGEMM's `output_dtype`).
    - `ids`: 1-D with 1-D `offsets` (torch's convention), or 2-D with no offsets.
    - `per_sample_weights` (sum mode only): a float weight per id, the ids' shape; a padding id,
      or an id outside the table under "zero", adds nothing, whatever its weight.
    - An id equal to `padding_idx` (negative counts from the end) is skipped: it adds nothing
      and does not count in a mean.
    - `out_of_range`: an id outside `[0, vocab)` raises `OutOfRangeError` ("error", checked
      for every id, also ids after the last bag), or is pooled as the row `EmbeddingV2` gives
      it: a zero row ("zero": it adds 0, counts in a mean and is a candidate 0 for max) or the
      nearest row ("clamp").

    Offsets must start at 0, never decrease and not pass the ids: a `ValueError` naming the
    offending offset, raised at build time for constant offsets and at execute otherwise,
    before anything is written.

    Raises:
        TypeError: ids or offsets not integer, weights not float, a table dtype other than
            the above, or another `out_dtype`.
        ValueError: ranks, shapes, devices, `mode`, `padding_idx` or `out_of_range` invalid,
            offsets invalid, or per-sample weights outside sum mode.
    """
    source = as_value(table)
    encoding = quantization_encoding or getattr(table, "quantization_encoding", None)
    hidden, pooled_dtype = _table_type(source, encoding)
    out_dtype = checked_out_dtype("embedding_bag", out_dtype) or pooled_dtype
    vocab = source.shape[0]
    if mode not in BAG_MODES:
        raise ValueError(f"embedding_bag: mode must be one of {BAG_MODES}, got {mode!r}")
    if out_of_range not in BAG_OUT_OF_RANGE:
        raise ValueError(
            f"embedding_bag: out_of_range must be one of {BAG_OUT_OF_RANGE}, got {out_of_range!r}"
        )
    index = index_value("embedding_bag", ids)
    inputs = [source, index]
    bags = _bag_count(index, offsets, include_last_offset)
    if offsets is not None:
        offsets_value = index_value("embedding_bag offsets", offsets)
        inputs.append(offsets_value)
        _check_constant_offsets(offsets_value, index, include_last_offset)
    if per_sample_weights is not None:
        inputs.append(_weights_value(per_sample_weights, index, mode))
    for value in inputs[1:]:
        if value.device != source.device:
            raise ValueError(
                f"embedding_bag: the table lives on {source.device} and an input on "
                f"{value.device}; move it with .to(device) first"
            )
    attrs = {
        "mode": mode,
        "include_last_offset": bool(include_last_offset),
        "padding_idx": _normalized_padding(padding_idx, vocab),
        "out_of_range": out_of_range,
        "encoding": encoding,
        "has_offsets": offsets is not None,
        "has_weights": per_sample_weights is not None,
    }
    result = TensorType(out_dtype, [bags, hidden], source.device)
    return current_graph().add_node(EMBEDDING_BAG, inputs, attrs, [result])[0]


def bag_bounds(
    offsets: np.ndarray, ids_count: int, include_last_offset: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Each bag's `[start, end)` in the ids, as int64, from valid or invalid offsets.

    Raises:
        ValueError: offsets that do not start at 0, decrease or pass the ids (`offsets_error`).
    """
    offsets = np.asarray(offsets).reshape(-1)
    if include_last_offset and offsets.size == 0:
        raise offsets_error(NO_OFFSETS, 0, 0, ids_count)
    if offsets.size:
        if offsets[0] != 0:
            raise offsets_error(OFFSET_NOT_ZERO, 0, offsets[0].item(), ids_count)
        drops = offsets[1:] < offsets[:-1]
        if drops.any():
            at = int(drops.argmax()) + 1
            raise offsets_error(OFFSET_DECREASES, at, offsets[at].item(), offsets[at - 1].item())
        if offsets[-1] > ids_count:  # non-decreasing: the last is the largest
            at = int((offsets > ids_count).argmax())
            raise offsets_error(OFFSET_PAST_IDS, at, offsets[at].item(), ids_count)
    bounds = offsets.astype(np.int64)
    if include_last_offset:
        return bounds[:-1], bounds[1:]
    return bounds, np.append(bounds[1:], np.int64(ids_count))


def offsets_error(problem: int, position: int, value: int, other: int) -> ValueError:
    """The error for bad offsets, worded alike on every backend: `other` is the offset before
    a decreasing one, else the number of ids."""
    if problem == NO_OFFSETS:
        return ValueError(
            "embedding_bag: include_last_offset needs at least one offset (the end of the "
            "last bag), got none"
        )
    if problem == OFFSET_NOT_ZERO:
        return ValueError(
            f"embedding_bag: offsets[0] must be 0 (the first bag starts the ids), got {value}"
        )
    if problem == OFFSET_DECREASES:
        return ValueError(
            f"embedding_bag: offsets must not decrease, but offsets[{position}] = {value} "
            f"< offsets[{position - 1}] = {other}"
        )
    return ValueError(
        f"embedding_bag: offsets[{position}] = {value} is past the {other} ids "
        f"(offsets must be <= {other})"
    )


def checked_out_dtype(op: str, out_dtype: DType | None, name: str = "out_dtype") -> DType | None:
    """`out_dtype` (the argument `name`) if it is one of `DENSE_TABLE_DTYPES`, or None.

    Raises:
        TypeError: another value.
    """
    if out_dtype is not None and out_dtype not in DENSE_TABLE_DTYPES:
        raise TypeError(f"{op}: {name} must be one of {DENSE_TABLE_DTYPES}, got {out_dtype!r}")
    return out_dtype


def _table_type(source: TensorValue, encoding: QuantizationEncoding | None) -> tuple[Any, DType]:
    """(hidden, result dtype) of a table."""
    if source.rank != 2:
        raise ValueError(
            f"embedding_bag: the table must be 2-D (vocab, hidden), got {source.shape}"
        )
    if encoding is not None:
        if not isinstance(encoding, QuantizationEncoding):
            raise TypeError(
                f"embedding_bag: quantization_encoding must be a QuantizationEncoding, "
                f"got {encoding!r}"
            )
        if source.dtype is not DType.uint8 or not isinstance(source.shape[1], StaticDim):
            raise TypeError(
                f"embedding_bag: a {encoding.value} table is uint8 rows of static width, got "
                f"{source.dtype!r} of shape {source.shape}"
            )
        return encoding.hidden_size(int(source.shape[1])), DType.float32
    check_dense_table_dtype("embedding_bag", source.dtype)
    return source.shape[1], source.dtype


def check_dense_table_dtype(owner: str, dtype: DType) -> None:
    """Raises TypeError where a table of `dtype`, without a quantization encoding, cannot be
    pooled (`owner` names the caller: the op, or a layer checking its declaration early)."""
    if dtype not in DENSE_TABLE_DTYPES:
        raise TypeError(
            f"{owner}: a table of {dtype!r} cannot be pooled; it must be one of "
            f"{', '.join(map(repr, DENSE_TABLE_DTYPES))}, or quantized rows (uint8 with a "
            "quantization_encoding)"
        )


def _bag_count(index: TensorValue, offsets: Any, include_last_offset: bool) -> Any:
    if index.rank == 2:
        if offsets is not None:
            raise ValueError(
                "embedding_bag: 2-D ids are fixed-length bags, one per row; offsets must be "
                "None with them"
            )
        return index.shape[0]
    if index.rank != 1:
        raise ValueError(f"embedding_bag: ids must be 1-D (with offsets) or 2-D, got {index.shape}")
    if offsets is None:
        raise ValueError("embedding_bag: 1-D ids need offsets (where each bag starts)")
    count = as_value(offsets).shape
    if len(count) != 1:
        raise ValueError(f"embedding_bag: offsets must be 1-D, got shape {count}")
    if not include_last_offset:
        return count[0]
    if isinstance(count[0], StaticDim) and int(count[0]) == 0:
        raise offsets_error(NO_OFFSETS, 0, 0, 0)
    return count[0] - 1


def _check_constant_offsets(
    offsets: TensorValue, index: TensorValue, include_last_offset: bool
) -> None:
    """Offsets known now are checked now (against static ids)."""
    if offsets.node.op is not CONSTANT:
        return
    values = np.asarray(offsets.node.attrs["value"])
    count = int(index.shape[0]) if isinstance(index.shape[0], StaticDim) else None
    bag_bounds(values, np.iinfo(np.int64).max if count is None else count, include_last_offset)


def check_weights_shape(op: str, weights: tuple[int, ...], ids: tuple[int, ...]) -> None:
    """At execute: the per-sample weights' shape is the ids' (a symbolic dim may differ in
    the graph).

    Raises:
        ValueError: it is not.
    """
    if tuple(weights) != tuple(ids):
        raise ValueError(
            f"{op}: per_sample_weights must have the ids' shape {tuple(ids)}, got {tuple(weights)}"
        )


def _weights_value(
    weights: Any, index: TensorValue, mode: str, op: str = "embedding_bag"
) -> TensorValue:
    if mode != "sum":
        raise ValueError(f"{op}: per_sample_weights are only for mode='sum', got mode={mode!r}")
    value = as_value(weights)
    if not value.dtype.is_float():
        raise TypeError(f"{op}: per_sample_weights must be floats, got {value.dtype!r}")
    same = value.rank == index.rank and all(
        a == b or not (isinstance(a, StaticDim) and isinstance(b, StaticDim))
        for a, b in zip(value.shape, index.shape, strict=True)
    )
    if not same:
        raise ValueError(
            f"{op}: per_sample_weights must have the ids' shape {index.shape}, got {value.shape}"
        )
    return value


def _normalized_padding(padding_idx: Any, vocab: Any) -> int | None:
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, int | np.integer):
        raise TypeError(f"embedding_bag: padding_idx must be an int or None, got {padding_idx!r}")
    if not isinstance(vocab, StaticDim):
        raise ValueError("embedding_bag: padding_idx needs a table of static vocab size")
    size = int(vocab)
    if not -size <= padding_idx < size:
        raise ValueError(
            f"embedding_bag: padding_idx must be in [-{size}, {size}) for {size} rows, "
            f"got {padding_idx}"
        )
    return int(padding_idx) % size
