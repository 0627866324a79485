"""`reducescatter.sum(inputs, signal_buffers=None, axis=0)`: MAX's reduce-scatter. One value per
device, of one shape; device `k` gets the `k`-th run of the sum along `axis`, the runs split
as MAX splits them (the first `size % n` devices take one more). The partial sums of a
row-split table's pooled bags, reduced so that each device keeps its own samples, move so.

>>> from ember.graph import DeviceRef, Graph, TensorType
>>> types = [TensorType(DType.float32, [5, 16], DeviceRef.CPU(i)) for i in range(2)]
>>> with Graph("g", input_types=types) as g:
...     first, second = sum(g.inputs)
>>> first.shape, second.shape, second.device
([Dim(3), Dim(16)], [Dim(2), Dim(16)], DeviceRef.CPU(id=1))

MAX's signal buffers are taken and not read (see `signal_buffers`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ember.dtype import DType

from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .axis import normalize_axis
from .per_device import per_device_values

__all__ = ["REDUCESCATTER_SUM", "run_bounds", "sum"]

REDUCESCATTER_SUM = Op("reducescatter_sum", cross_device=True)


def sum(
    inputs: Iterable[Any], signal_buffers: Iterable[Any] | None = None, axis: int = 0
) -> list[TensorValue]:
    """The inputs' sum, device `k` holding its run along `axis`.

    Raises:
        ValueError: no inputs, two on one device, a scalar, or shapes that differ.
        TypeError: dtypes that differ, bool values, or `signal_buffers` not iterable.
        AxisError: `axis` is out of range.
    """
    values = per_device_values("reducescatter.sum", inputs, signal_buffers)
    devices = [v.device for v in values]
    first = values[0]
    for v in values[1:]:
        if list(v.shape) != list(first.shape):
            raise ValueError(
                "reducescatter.sum operation must have the same shape across all input "
                f"tensors. Got: {first.shape} and {v.shape}"
            )
    if first.dtype is DType.bool:
        raise TypeError("reducescatter.sum: adds numbers, got bool values; cast them first")
    if first.rank == 0:
        raise ValueError("reducescatter.sum: takes values of rank 1 or more, got a scalar")
    axis = normalize_axis("reducescatter.sum", axis, first.rank)
    n, size = len(values), first.shape[axis]
    results = []
    for k, device in enumerate(devices):
        shape = list(first.shape)
        shape[axis] = (size + (n - k - 1)) // n
        results.append(TensorType(first.dtype, shape, device))
    return list(current_graph().add_node(REDUCESCATTER_SUM, values, {"axis": axis}, results))


def run_bounds(size: int, n: int) -> list[tuple[int, int]]:
    """Each of `n` devices' `(start, stop)` along an axis of `size`: the first `size % n`
    devices take `size // n + 1`, the others `size // n`."""
    bounds, start = [], 0
    for k in range(n):
        stop = start + (size + n - k - 1) // n
        bounds.append((start, stop))
        start = stop
    return bounds
