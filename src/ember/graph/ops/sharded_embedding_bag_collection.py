"""`sharded_embedding_bag_collection(tables, values, lengths, devices)`: a collection whose
tables are split into row blocks over devices (a whole table is one block), pooled as
`embedding_bag_collection` pools it, with the whole `(batch, sum of widths)` result on every
device.

Table `t` is a list of blocks, each on its own device; block `s` holds rows `[offset_s,
offset_s + rows_s)`, the offsets being the running sum of the blocks' row counts, which sum to
the table's vocabulary. Each device pools only the rows it holds: per bag, a partial sum (sum,
mean) or maximum (max) of its rows. Partials travel, one vector per bag and device, never
rows; they are then added (sum; mean divides the total by the bag's count, which the ids
alone give) or their maximum taken over the devices that hold any of the bag's rows (a bag
with no rows anywhere pools to zeros). Ids are checked (or zeroed or clamped) against the
whole table, so a bad id behaves as in the unsplit collection.

Numbers: max equals the unsplit collection exactly, and so does every table held whole by
one device. A split table's sum adds each device's partial sum (accumulated in float32 in bag
order, as the unsplit collection does) in device order: the same terms summed in another
grouping, so the bits can differ, within the same bound `n * 2**-24 * sum |x_i|` of the exact
sum (the grouping is one more way of adding `n` terms in float32).

>>> from ember.graph import DeviceRef, Graph, TensorType, Weight
>>> users = [Weight(f"u{i}", DType.float32, [50, 8], DeviceRef.CPU(i)) for i in range(2)]
>>> items = [Weight("items", DType.float32, [50, 4], DeviceRef.CPU(1))]
>>> types = [TensorType(DType.int64, ["n"]), TensorType(DType.int32, [2, "batch"])]
>>> devices = [DeviceRef.CPU(0), DeviceRef.CPU(1)]
>>> with Graph("g", input_types=types) as g:
...     on_0, on_1 = sharded_embedding_bag_collection([users, items], *g.inputs, devices)
>>> on_1.shape, on_1.device
([Dim('batch'), Dim(12)], DeviceRef.CPU(id=1))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ember.dtype import DType

from ..device import DeviceRef
from ..dim import StaticDim
from ..graph import current_graph
from ..op import Op
from ..quantization import QuantizationEncoding
from ..type import TensorType
from ..value import TensorValue
from .constant import as_value
from .embedding_bag import _normalized_padding, _table_type, checked_out_dtype
from .embedding_bag_collection import (
    _per_table,
    check_pooling,
    collection_weights,
    values_and_lengths,
)

__all__ = [
    "SHARDED_EMBEDDING_BAG_COLLECTION",
    "sharded_embedding_bag_collection",
]

SHARDED_EMBEDDING_BAG_COLLECTION = Op(
    "sharded_embedding_bag_collection", lookup=True, cross_device=True
)


def sharded_embedding_bag_collection(
    tables: Sequence[Sequence[Any]],
    values: Any,
    lengths: Any,
    devices: Sequence[DeviceRef],
    *,
    per_sample_weights: Any = None,
    features: Sequence[int] | None = None,
    modes: Sequence[str] | None = None,
    padding_idx: Sequence[int | None] | None = None,
    out_of_range: Sequence[str] | None = None,
    quantization_encodings: Sequence[QuantizationEncoding | None] | None = None,
    out_dtype: DType | None = None,
) -> list[TensorValue]:
    """Every feature's bags pooled, one `(batch, sum of the features' widths)` result per
    device of `devices`; `tables[t]` is table `t`'s row blocks in order, the other arguments
    (`per_sample_weights` and `out_dtype` among them) as `embedding_bag_collection` takes them
    (`padding_idx` an id of the whole table).

    Raises:
        ValueError: no tables or devices, a table of no blocks, a block of no rows (or not a
            static count), two blocks of a table on one device, a block on none of `devices`,
            blocks of a table that differ in width, or what `embedding_bag_collection` rejects.
        TypeError: blocks of a table of different dtypes, ids or lengths not integers, or a
            table `embedding_bag` rejects.
    """
    op = "sharded_embedding_bag_collection"
    devices = list(devices)
    if not devices or len(set(devices)) != len(devices):
        raise ValueError(f"{op}: needs devices, each once, got {devices}")
    blocks = [[as_value(b) for b in table] for table in tables]
    count = len(blocks)
    if count == 0:
        raise ValueError(f"{op}: needs at least one table")
    features = list(range(count)) if features is None else [int(f) for f in features]
    if not features or not all(0 <= t < count for t in features):
        raise ValueError(f"{op}: features {features} must name tables 0..{count - 1}")
    modes = _per_table("modes", modes, "sum", count)
    out_of_range = _per_table("out_of_range", out_of_range, "error", count)
    padding = _per_table("padding_idx", padding_idx, None, count)
    encodings = _per_table("quantization_encodings", quantization_encodings, None, count)
    shards, widths, dtypes, vocab = [], [], [], []
    for t, table in enumerate(blocks):
        if not table:
            raise ValueError(f"{op}: table {t} has no blocks")
        if len({b.device for b in table}) != len(table):
            raise ValueError(f"{op}: table {t} has two blocks on one device")
        encodings[t] = encodings[t] or getattr(tables[t][0], "quantization_encoding", None)
        offset = 0
        for block in table:
            rows = block.shape[0] if block.rank else None
            if not isinstance(rows, StaticDim) or int(rows) == 0:
                raise ValueError(f"{op}: table {t}'s blocks need static, non-zero row counts")
            if block.device not in devices:
                raise ValueError(f"{op}: table {t} has a block on {block.device}, not a device")
            if block.dtype != table[0].dtype or block.shape[1:] != table[0].shape[1:]:
                raise ValueError(f"{op}: table {t}'s blocks differ: {table[0].type}, {block.type}")
            shards.append((t, devices.index(block.device), offset, int(rows)))
            offset += int(rows)
        hidden, dtype = _table_type(table[0], encodings[t])
        check_pooling(op, t, modes[t], out_of_range[t])
        padding[t] = _normalized_padding(padding[t], StaticDim(offset))
        widths.append(int(hidden))
        dtypes.append(dtype)
        vocab.append(offset)
    ids, sizes = values_and_lengths(op, values, lengths, len(features))
    inputs = [*(b for table in blocks for b in table), ids, sizes]
    if per_sample_weights is not None:
        inputs.append(collection_weights(op, per_sample_weights, ids, modes, features))
    pooled_dtype = dtypes[0] if len(set(dtypes)) == 1 else DType.float32
    out_dtype = checked_out_dtype("sharded_embedding_bag_collection", out_dtype) or pooled_dtype
    attrs = {
        "shards": tuple(shards),
        "vocab": tuple(vocab),
        "features": tuple(features),
        "modes": tuple(modes),
        "padding_idx": tuple(padding),
        "out_of_range": tuple(out_of_range),
        "encodings": tuple(encodings),
        "widths": tuple(widths[t] for t in features),
        "has_weights": per_sample_weights is not None,
    }
    shape = [sizes.shape[1], sum(attrs["widths"])]
    results = [TensorType(out_dtype, shape, d) for d in devices]
    return list(current_graph().add_node(SHARDED_EMBEDDING_BAG_COLLECTION, inputs, attrs, results))
