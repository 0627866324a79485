"""`sharded_gather(shards, indices)`: a lookup in a table split by rows over devices, whose
result every shard's device receives whole.

Shard `k` holds rows `[offset_k, offset_k + rows_k)` of the table, the offsets being the running
sum of the shards' row counts. How the rows reach every device is each backend's business: in
shared memory each shard writes only the rows it owns into one result; across devices they
exchange rows. Ids are checked against the whole table once, so a bad id is treated exactly as
in an unsplit lookup.

>>> from ember.graph import DeviceRef, Graph, TensorType, Weight
>>> halves = [Weight(f"t{i}", DType.float32, [500, 64], DeviceRef.CPU(i)) for i in range(2)]
>>> with Graph("g", input_types=[TensorType(DType.int64, ["n"])]) as g:
...     on_0, on_1 = sharded_gather(halves, g.inputs[0])
>>> on_1.shape, on_1.device
([Dim('n'), Dim(64)], DeviceRef.CPU(id=1))
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Literal

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..dim import StaticDim
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .constant import as_value
from .distributed_broadcast import BROADCAST
from .gather import index_value
from .reducescatter import REDUCESCATTER_SUM
from .transfer import TRANSFER_TO

__all__ = ["SHARDED_GATHER", "SHARDED_OUT_OF_RANGE", "scattered", "sharded_gather"]

SHARDED_GATHER = Op("sharded_gather", lookup=True, cross_device=True)
SHARDED_OUT_OF_RANGE = ("error", "zero", "clamp")


def sharded_gather(
    shards: Sequence[Any],
    indices: Any,
    *,
    out_of_range: Literal["error", "zero", "clamp"] = "error",
    reduce: Literal["all", "scatter"] = "all",
) -> list[TensorValue]:
    """The rows at `indices` (ids of the whole table), one result per shard's device.

    `reduce="all"` gives every device the whole result; `"scatter"` gives device `k` the rows
    of the `k`-th of `n` equal slices of the indices' first axis (for sequence-parallel
    models), which must then divide by the number of devices.

    `out_of_range`: "error" raises an IndexError naming the first id outside the table and its
    position, "zero" gives such ids zero rows, "clamp" the nearest end row.

    Raises:
        ValueError: no shards, two on one device, a shard's row count not static, row shapes
            that differ, an unknown `out_of_range` or `reduce`, or (scattering) indices of
            rank 0 or a static first axis that the devices do not divide.
        TypeError: shards of different dtypes, or indices that are not integers.
    """
    values = [as_value(s) for s in shards]
    ids = index_value("sharded_gather", indices)
    if not values:
        raise ValueError("sharded_gather: needs at least one shard")
    if out_of_range not in SHARDED_OUT_OF_RANGE:
        raise ValueError(
            f"sharded_gather: out_of_range must be one of {SHARDED_OUT_OF_RANGE}, "
            f"got {out_of_range!r}"
        )
    first = values[0]
    devices = [v.device for v in values]
    if len(set(devices)) != len(devices):
        raise ValueError(f"sharded_gather: each shard must be on its own device, got {devices}")
    for k, v in enumerate(values):
        if v.rank == 0 or not isinstance(v.shape[0], StaticDim):
            raise ValueError(f"sharded_gather: shard {k} needs a static row count, got {v.shape}")
        if v.dtype != first.dtype:
            raise TypeError(f"sharded_gather: shard dtypes differ: {first.dtype!r}, {v.dtype!r}")
        if list(v.shape[1:]) != list(first.shape[1:]):
            raise ValueError(f"sharded_gather: shard rows differ: {first.shape} and {v.shape}")
    if reduce not in ("all", "scatter"):
        raise ValueError(f"sharded_gather: reduce must be 'all' or 'scatter', got {reduce!r}")
    shape = [*ids.shape, *first.shape[1:]]
    if reduce == "scatter":
        n = len(values)
        if ids.rank == 0:
            raise ValueError("sharded_gather: reduce='scatter' splits the ids' first axis")
        if isinstance(ids.shape[0], StaticDim) and int(ids.shape[0]) % n:
            raise ValueError(
                f"sharded_gather: reduce='scatter' splits the ids' first axis "
                f"({ids.shape[0]}) over {n} devices; it must divide evenly"
            )
        shape[0] = ids.shape[0] // n
    rows = tuple(int(v.shape[0]) for v in values)
    offsets = tuple(itertools.accumulate(rows, initial=0))[:-1]
    results = [TensorType(first.dtype, shape, d) for d in devices]
    attrs = {"offsets": offsets, "rows": rows, "size": sum(rows), "out_of_range": out_of_range}
    attrs["reduce"] = reduce
    return list(current_graph().add_node(SHARDED_GATHER, [*values, ids], attrs, results))


def scattered(value: TensorValue) -> bool:
    """Whether `value` holds one device's slice of a `reduce="scatter"` lookup's tokens (or of
    a `reducescatter.sum`'s): it
    depends on such a lookup's results through no exchange that makes each device whole
    again (moving a value, or copying it to devices, keeps it a slice)."""
    seen: set[int] = set()
    stack = [value.node]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.op is REDUCESCATTER_SUM or (
            node.op is SHARDED_GATHER and node.attrs["reduce"] == "scatter"
        ):
            return True
        if node.op.cross_device and node.op not in (TRANSFER_TO, BROADCAST):
            continue  # an all-gather, an all-reduce, a reduction across shards: whole
        stack.extend(v.node for v in node.inputs)
    return False
