"""`distributed_broadcast(x, devices)`: a copy of one value on each of several devices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..device import DeviceRef
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .constant import as_value

__all__ = ["BROADCAST", "distributed_broadcast"]

BROADCAST = Op("broadcast", may_alias=True, cross_device=True)


def distributed_broadcast(x: Any, devices: Sequence[DeviceRef]) -> list[TensorValue]:
    """Raises ValueError for no devices or a repeated one, TypeError for a non-device."""
    value = as_value(x)
    devices = list(devices)
    if not devices:
        raise ValueError("distributed_broadcast: needs at least one device")
    for device in devices:
        if not isinstance(device, DeviceRef):
            raise TypeError(f"distributed_broadcast: expected DeviceRefs, got {device!r}")
    if len(set(devices)) != len(devices):
        raise ValueError(f"distributed_broadcast: devices repeat: {devices}")
    results = [TensorType(value.dtype, value.shape, d) for d in devices]
    return list(current_graph().add_node(BROADCAST, [value], {}, results))
