"""`transfer_to(x, device)`: the same value on another device."""

from __future__ import annotations

from typing import Any

from ..device import DeviceRef
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .constant import as_value

__all__ = ["TRANSFER_TO", "transfer_to"]

TRANSFER_TO = Op("transfer_to", may_alias=True, cross_device=True)


def transfer_to(x: Any, device: DeviceRef) -> TensorValue:
    """Returns `x` itself when it already lives on `device`; raises TypeError for a non-device."""
    value = as_value(x)
    if not isinstance(device, DeviceRef):
        raise TypeError(f"transfer_to: expected a DeviceRef, got {device!r}")
    if value.device == device:
        return value
    result = TensorType(value.dtype, value.shape, device)
    return current_graph().add_node(TRANSFER_TO, [value], {"device": device}, [result])[0]
