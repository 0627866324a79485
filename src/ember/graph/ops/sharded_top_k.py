"""`sharded_top_k(shards, k)`: the `k` largest values of a vocabulary split over devices, with
their global ids, on every device; each device contributes candidates, never its whole shard.

Shard `d` holds columns `[offset_d, offset_d + rows_d)` of the vocabulary along its last axis,
the offsets being the running sum of the shards' sizes. The result equals `top_k` of the
shards concatenated along the last axis, ties and NaN included: each device keeps its own
`min(k, rows_d)` best (values and global ids), and those candidates alone cross devices
(`k * (itemsize + 4)` bytes per token and device, against `rows_d * itemsize` for its logits).

>>> from ember.graph import DeviceRef, Graph, TensorType
>>> types = [TensorType(DType.float32, ["batch", 500], DeviceRef.CPU(i)) for i in range(2)]
>>> with Graph("g", input_types=types) as g:
...     [(values_0, ids_0), (values_1, ids_1)] = sharded_top_k(g.inputs, k=5)
>>> ids_1.shape, ids_1.dtype, ids_1.device
([Dim('batch'), Dim(5)], int64, DeviceRef.CPU(id=1))
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from ember.dtype import DType

from ..dim import StaticDim
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .vocab_shards import vocab_shards

__all__ = ["SHARDED_TOP_K", "sharded_top_k"]

SHARDED_TOP_K = Op("sharded_top_k", cross_device=True)


def sharded_top_k(shards: Sequence[Any], k: int) -> list[tuple[TensorValue, TensorValue]]:
    """`(values, ids)` on each shard's device: the `k` largest values over all shards' last
    axes, largest first, and their int64 global ids; both of the shards' leading shape with a
    last axis of `k`.

    Ties go to the lowest global id, on every backend and every split of the vocabulary; NaN
    ranks above every number and -0.0 equals 0.0, as in `top_k`. A shard with fewer than `k`
    columns (or none) sends what it has.

    Raises:
        TypeError: `k` is not an int, or the shards are not one float dtype.
        ValueError: `k` outside `[1, vocabulary]`, or shards that do not fit together (see
            `vocab_shards`).
    """
    checked = vocab_shards("sharded_top_k", shards)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"sharded_top_k: k must be an int, got {k!r}")
    if not 1 <= k <= checked.size:
        raise ValueError(f"sharded_top_k: k must be in [1, {checked.size}], got {k}")
    first = checked.values[0]
    shape = [*first.shape[:-1], StaticDim(int(k))]
    results = []
    for device in checked.devices:
        results += [TensorType(first.dtype, shape, device), TensorType(DType.int64, shape, device)]
    attrs = {**checked.attrs, "k": int(k)}
    out = current_graph().add_node(SHARDED_TOP_K, checked.values, attrs, results)
    return [(out[2 * d], out[2 * d + 1]) for d in range(len(checked.devices))]
