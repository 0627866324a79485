"""Collectives across devices: `allreduce.sum` adds one value per device and gives every device
the total (MAX's signal buffers are taken and not read, see `signal_buffers`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ember.dtype import DType

from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .per_device import per_device_values

__all__ = ["ALLREDUCE_SUM", "sum"]

ALLREDUCE_SUM = Op("allreduce_sum", cross_device=True)


def sum(inputs: Iterable[Any], signal_buffers: Iterable[Any] | None = None) -> list[TensorValue]:
    """One input per device, all of one dtype and shape; returns the sum on each device.

    Raises:
        ValueError: no inputs, two inputs on one device, or different shapes.
        TypeError: different dtypes, bool values, or `signal_buffers` not iterable.
    """
    values = per_device_values("allreduce.sum", inputs, signal_buffers)
    first = values[0]
    devices = [v.device for v in values]
    for v in values[1:]:
        if list(v.shape) != list(first.shape):
            raise ValueError(f"allreduce.sum: shapes differ: {first.shape} and {v.shape}")
    if first.dtype is DType.bool:
        raise TypeError("allreduce.sum: adds numbers, got bool values; cast them first")
    results = [TensorType(first.dtype, first.shape, d) for d in devices]
    return list(current_graph().add_node(ALLREDUCE_SUM, values, {}, results))
