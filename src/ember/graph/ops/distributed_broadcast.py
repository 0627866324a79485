"""`distributed_broadcast(x, devices)`: a copy of one value on each of several devices, named
by `DeviceRef`s or, as MAX names them, by one signal buffer on each (`nn.Signals`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..device import DeviceRef
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import BufferValue, TensorValue
from .constant import as_value

__all__ = ["BROADCAST", "distributed_broadcast"]

BROADCAST = Op("broadcast", may_alias=True, cross_device=True)


def distributed_broadcast(
    x: Any,
    devices: Sequence[DeviceRef | BufferValue] | None = None,
    *,
    signal_buffers: Sequence[BufferValue] | None = None,
) -> list[TensorValue]:
    """Raises ValueError for no devices or a repeated one, TypeError for a non-device."""
    if devices is not None and signal_buffers is not None:
        raise TypeError("distributed_broadcast: give devices or signal_buffers, not both")
    value = as_value(x)
    given = devices if devices is not None else signal_buffers
    devices = [d.device if isinstance(d, BufferValue) else d for d in given or ()]
    if not devices:
        raise ValueError("distributed_broadcast: needs at least one device")
    for device in devices:
        if not isinstance(device, DeviceRef):
            raise TypeError(f"distributed_broadcast: expected DeviceRefs, got {device!r}")
    if len(set(devices)) != len(devices):
        raise ValueError(f"distributed_broadcast: devices repeat: {devices}")
    results = [TensorType(value.dtype, value.shape, d) for d in devices]
    return list(current_graph().add_node(BROADCAST, [value], {}, results))
