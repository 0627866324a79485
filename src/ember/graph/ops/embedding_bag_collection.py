"""`embedding_bag_collection(tables, values, lengths)`: many features' bags pooled in one op,
from TorchRec's `KeyedJaggedTensor` layout into its `KeyedTensor` layout.

Feature `f` reads table `features[f]` (a table may serve several features). `values` holds the
ids of every feature, feature after feature; `lengths[f, b]` is how many of them sample `b`
of feature `f` has, so the bags of a feature follow each other in sample order. The result
is one `(batch, sum of the features' widths)` array: sample `b`'s row is feature 0's pooled
vector, then feature 1's, and so on. Each bag is pooled as `embedding_bag` pools it (its
table's `mode`, `padding_idx` and `out_of_range`; float32 accumulation in bag order, the
same bound), and an empty bag pools to zeros.

>>> from ember.graph import Graph, TensorType, Weight
>>> users = Weight("users", DType.float32, [100, 8])
>>> items = Weight("items", DType.float32, [50, 4])
>>> types = [TensorType(DType.int64, ["n"]), TensorType(DType.int32, [3, "batch"])]
>>> with Graph("g", input_types=types) as g:
...     pooled = embedding_bag_collection([users, items], *g.inputs, features=[0, 1, 1])
>>> pooled.shape, pooled.dtype
([Dim('batch'), Dim(16)], float32)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ember.dtype import DType

from ..dim import StaticDim
from ..graph import current_graph
from ..op import Op
from ..quantization import QuantizationEncoding
from ..type import TensorType
from ..value import TensorValue
from .constant import as_value
from .embedding_bag import (
    BAG_MODES,
    BAG_OUT_OF_RANGE,
    _normalized_padding,
    _table_type,
    _weights_value,
    checked_out_dtype,
)
from .gather import index_value

__all__ = [
    "EMBEDDING_BAG_COLLECTION",
    "LENGTHS_LONG",
    "LENGTHS_NEGATIVE",
    "LENGTHS_SUM",
    "check_lengths",
    "check_pooling",
    "collection_weights",
    "embedding_bag_collection",
    "lengths_error",
    "values_and_lengths",
]

EMBEDDING_BAG_COLLECTION = Op("embedding_bag_collection", lookup=True)

LENGTHS_NEGATIVE, LENGTHS_SUM, LENGTHS_LONG = 0, 1, 2
"""What is wrong with lengths, as `lengths_error` and the backends' checks code it: a negative
length, a sum other than the number of values, one length longer than all the values."""


def embedding_bag_collection(
    tables: Sequence[Any],
    values: Any,
    lengths: Any,
    *,
    per_sample_weights: Any = None,
    features: Sequence[int] | None = None,
    modes: Sequence[str] | None = None,
    padding_idx: Sequence[int | None] | None = None,
    out_of_range: Sequence[str] | None = None,
    quantization_encodings: Sequence[QuantizationEncoding | None] | None = None,
    out_dtype: DType | None = None,
) -> TensorValue:
    """Every feature's bags pooled from its table: `(batch, sum of the features' widths)`.

    - `tables`: each as `embedding_bag` takes it (float32, bfloat16 or float16 rows, or uint8
      rows of a registry format: `quantization_encodings[t]`, or the `Weight`'s own). Tables
      may differ in width, dtype and format.
    - `values`: 1-D integer ids of every feature, feature-major; `lengths`: integer
      `(features, batch)`, with a static number of features.
    - `per_sample_weights`: a float weight per value (`values`' shape: TorchRec's weighted
      `KeyedJaggedTensor`), each row multiplied by its weight before it is summed, as
      `embedding_bag` weighs rows; every table a feature reads must pool by "sum". A padding
      id, or an id outside a "zero" table, adds nothing, whatever its weight.
    - `features[f]`: the table feature `f` reads (default: one feature per table, in order).
    - `modes`, `padding_idx`, `out_of_range`: per table, as `embedding_bag` takes them
      (default "sum", None, "error").
    - The result is float32, or the tables' dtype when every table is bfloat16 (or every one
      float16): then each pooled vector is rounded once to it. `out_dtype` (float32, bfloat16
      or float16) asks for another, the float32 pooling rounded once to it.

    Lengths must be non-negative and sum to the number of values, and under "error" every id
    a feature reads must be a row of its table: checked at execute, before anything is
    written (`ValueError` for lengths, `OutOfRangeError` naming the id's position in `values`).

    Raises:
        TypeError: values or lengths not integer, per-sample weights not floats, or a table
            `embedding_bag` rejects.
        ValueError: no tables, ranks or shapes invalid (lengths' first dim is not the number of
            features; weights not of the values' shape, also checked at execute), a feature
            naming no table, weights for a table that does not sum, per-table settings of
            another length or invalid, or tables and ids on different devices.
    """
    sources = [as_value(t) for t in tables]
    count = len(sources)
    if count == 0:
        raise ValueError("embedding_bag_collection: needs at least one table")
    features = list(range(count)) if features is None else [int(f) for f in features]
    if not features:
        raise ValueError("embedding_bag_collection: needs at least one feature")
    for f, t in enumerate(features):
        if not 0 <= t < count:
            raise ValueError(
                f"embedding_bag_collection: feature {f} reads table {t}, but there are "
                f"{count} tables"
            )
    modes = _per_table("modes", modes, "sum", count)
    out_of_range = _per_table("out_of_range", out_of_range, "error", count)
    padding = _per_table("padding_idx", padding_idx, None, count)
    declared = _per_table("quantization_encodings", quantization_encodings, None, count)
    encodings = [
        e or getattr(t, "quantization_encoding", None)
        for e, t in zip(declared, tables, strict=True)
    ]
    widths, dtypes = [], []
    for t, (source, encoding) in enumerate(zip(sources, encodings, strict=True)):
        hidden, dtype = _table_type(source, encoding)
        if not isinstance(hidden, StaticDim | int):
            raise ValueError(
                f"embedding_bag_collection: table {t} has width {hidden}; widths must be static"
            )
        check_pooling("embedding_bag_collection", t, modes[t], out_of_range[t])
        padding[t] = _normalized_padding(padding[t], source.shape[0])
        widths.append(int(hidden))
        dtypes.append(dtype)
    ids, sizes = values_and_lengths("embedding_bag_collection", values, lengths, len(features))
    inputs = [*sources, ids, sizes]
    if per_sample_weights is not None:
        inputs.append(
            collection_weights("embedding_bag_collection", per_sample_weights, ids, modes, features)
        )
    device = sources[0].device
    for value in inputs:
        if value.device != device:
            raise ValueError(
                f"embedding_bag_collection: table 0 lives on {device} and an input on "
                f"{value.device}; move it with .to(device) first"
            )
    pooled_dtype = dtypes[0] if len(set(dtypes)) == 1 else DType.float32
    out_dtype = checked_out_dtype("embedding_bag_collection", out_dtype) or pooled_dtype
    attrs = {
        "features": tuple(features),
        "modes": tuple(modes),
        "padding_idx": tuple(padding),
        "out_of_range": tuple(out_of_range),
        "encodings": tuple(encodings),
        "widths": tuple(widths[t] for t in features),
        "has_weights": per_sample_weights is not None,
    }
    result = TensorType(out_dtype, [sizes.shape[1], sum(attrs["widths"])], device)
    return current_graph().add_node(EMBEDDING_BAG_COLLECTION, inputs, attrs, [result])[0]


def check_pooling(op: str, t: int, mode: str, out_of_range: str) -> None:
    """Table `t`'s pooling `mode` and `out_of_range` policy are ones bags take.

    Raises:
        ValueError: either is not.
    """
    if mode not in BAG_MODES:
        raise ValueError(f"{op}: modes[{t}] must be one of {BAG_MODES}, got {mode!r}")
    if out_of_range not in BAG_OUT_OF_RANGE:
        raise ValueError(
            f"{op}: out_of_range[{t}] must be one of {BAG_OUT_OF_RANGE}, got {out_of_range!r}"
        )


def collection_weights(
    op: str, weights: Any, ids: TensorValue, modes: Sequence[str], features: Sequence[int]
) -> TensorValue:
    """The per-value weights as a graph value, checked: floats of the values' shape, for
    features whose tables all pool by "sum" (a weight scales a summed term; a mean or max of
    weighted rows is not what any peer computes).

    Raises:
        TypeError: weights not floats.
        ValueError: a feature's table pools by another mode, or weights of another shape.
    """
    for f, t in enumerate(features):
        if modes[t] != "sum":
            raise ValueError(
                f"{op}: per_sample_weights are only for mode='sum', but feature {f} reads "
                f"table {t}, of mode={modes[t]!r}"
            )
    return _weights_value(weights, ids, "sum", op)


def values_and_lengths(
    op: str, values: Any, lengths: Any, features: int
) -> tuple[TensorValue, TensorValue]:
    """The ids and lengths as graph values, of the layout a collection takes.

    Raises:
        TypeError: either is not integer.
        ValueError: values not 1-D, or lengths not `(features, batch)`.
    """
    ids = index_value(f"{op} values", values)
    if ids.rank != 1:
        raise ValueError(f"{op}: values must be 1-D, got {ids.shape}")
    sizes = index_value(f"{op} lengths", lengths)
    if sizes.rank != 2 or sizes.shape[0] != StaticDim(features):
        raise ValueError(
            f"{op}: lengths must be (features, batch) = ({features}, batch), got {sizes.shape}"
        )
    return ids, sizes


def check_lengths(lengths: np.ndarray, values_count: int) -> np.ndarray:
    """Where each bag starts in the values, `(features * batch + 1,)` int64, from lengths
    checked to lie in `[0, values_count]` and to sum to `values_count`. Each length is checked
    before any sum, so that no 64-bit sum can wrap around to the right count (and unsigned
    lengths past int64 are refused, not read as negative).

    Raises:
        ValueError: a negative length, one longer than all the values, or lengths summing to
            another count (`lengths_error`).
    """
    flat = lengths.reshape(-1)
    batch = lengths.shape[1]
    if flat.size:
        bad = flat > values_count
        if flat.dtype.kind == "i":
            bad |= flat < 0
        if bad.any():
            at = int(bad.argmax())
            value = flat[at].item()
            problem = LENGTHS_NEGATIVE if value < 0 else LENGTHS_LONG
            raise lengths_error(problem, at, value, values_count, batch)
    starts = np.zeros(flat.size + 1, np.int64)
    np.cumsum(flat, dtype=np.int64, out=starts[1:])
    could_wrap = values_count and flat.size > np.iinfo(np.int64).max // values_count
    if could_wrap and (starts[1:] < starts[:-1]).any():  # summed past 2**63
        raise lengths_error(LENGTHS_SUM, -1, None, values_count, batch)
    if starts[-1] != values_count:
        raise lengths_error(LENGTHS_SUM, -1, int(starts[-1]), values_count, batch)
    return starts


def lengths_error(
    problem: int, position: int, value: int | None, values_count: int, batch: int
) -> ValueError:
    """The error for bad lengths, worded alike on every backend: `position` is the bad
    length's flat index in the `(features, batch)` lengths, `value` that length or, for a wrong
    sum, the sum (None where it is not known: past int64)."""
    if problem == LENGTHS_SUM:
        total = "to more than" if value is None else f"to {value}, but there are"
        return ValueError(f"embedding_bag_collection: lengths sum {total} {values_count} values")
    where = f"lengths[{position // batch}, {position % batch}]"
    if value is not None:
        where += f" = {value}"
    if problem == LENGTHS_NEGATIVE:
        return ValueError(f"embedding_bag_collection: {where} is negative")
    return ValueError(f"embedding_bag_collection: {where} is more than all {values_count} values")


def _per_table(name: str, given: Any, default: Any, count: int) -> list:
    if given is None:
        return [default] * count
    given = list(given)
    if len(given) != count:
        raise ValueError(
            f"embedding_bag_collection: {name} needs one entry per table ({count}), "
            f"got {len(given)}"
        )
    return given
