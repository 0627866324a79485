"""The checks MAX's collectives (`allreduce.sum`, `allgather`, `reducescatter.sum`) share:
one value per device, of one dtype, with MAX's signal buffers taken (see `signal_buffers`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..value import TensorValue
from .constant import as_value
from .signal_buffers import check_signal_buffers

__all__ = ["per_device_values"]


def per_device_values(
    op: str, inputs: Iterable[Any], signal_buffers: Iterable[Any] | None
) -> list[TensorValue]:
    """`inputs` as graph values, checked.

    Raises:
        ValueError: no inputs, or two on one device.
        TypeError: dtypes that differ, or `signal_buffers` not iterable.
    """
    check_signal_buffers(op, signal_buffers)
    values = [as_value(v) for v in inputs]
    if not values:
        raise ValueError(f"{op}: needs at least one input")
    devices = [v.device for v in values]
    if len(set(devices)) != len(devices):
        raise ValueError(f"{op}: each input must be on its own device, got {devices}")
    for v in values[1:]:
        if v.dtype != values[0].dtype:
            raise TypeError(f"{op}: dtypes differ: {values[0].dtype!r} and {v.dtype!r}")
    return values
