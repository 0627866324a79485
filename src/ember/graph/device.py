"""Where a value of the graph lives: a device kind and its index.

>>> DeviceRef.CPU(), DeviceRef.GPU(1)
(DeviceRef.CPU(id=0), DeviceRef.GPU(id=1))
>>> str(DeviceRef.GPU())
'gpu:0'
"""

from __future__ import annotations

import enum
import numbers
from typing import Any

__all__ = ["DeviceKind", "DeviceRef"]


class DeviceKind(enum.StrEnum):
    CPU = "cpu"
    GPU = "gpu"


class DeviceRef:
    """A device named in a graph; the session maps it onto a real device at load."""

    __slots__ = ("device_type", "id")

    def __init__(self, device_type: DeviceKind | str, id: int = 0) -> None:
        try:
            kind = DeviceKind(str(device_type).lower())
        except ValueError:
            raise ValueError(f"device kind must be 'cpu' or 'gpu', got {device_type!r}") from None
        if isinstance(id, bool) or not isinstance(id, numbers.Integral) or id < 0:
            raise ValueError(f"device id must be an int >= 0, got {id!r}")
        self.device_type = kind
        self.id = int(id)

    @classmethod
    def CPU(cls, id: int = 0) -> DeviceRef:
        return cls(DeviceKind.CPU, id)

    @classmethod
    def GPU(cls, id: int = 0) -> DeviceRef:
        return cls(DeviceKind.GPU, id)

    @classmethod
    def from_device(cls, device: object) -> DeviceRef:
        """The reference to a driver device (`ember.driver.CPU()`, `Accelerator(i)`), or a
        reference itself, as MAX takes either."""
        if isinstance(device, DeviceRef):
            return device
        label, index = getattr(device, "label", None), getattr(device, "id", None)
        if label not in ("cpu", "gpu") or not isinstance(index, int):
            raise TypeError(f"expected an ember.driver device, got {device!r}")
        return cls(label, index)

    def to_device(self) -> Any:
        """The driver device this refers to (`ember.driver.CPU(id)` or `Accelerator(id)`)."""
        from ember.driver import CPU, Accelerator

        return CPU(self.id) if self.is_cpu() else Accelerator(self.id)

    def is_cpu(self) -> bool:
        return self.device_type is DeviceKind.CPU

    def is_gpu(self) -> bool:
        return self.device_type is DeviceKind.GPU

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, DeviceRef)
            and self.device_type == other.device_type
            and self.id == other.id
        )

    def __hash__(self) -> int:
        return hash((self.device_type, self.id))

    def __str__(self) -> str:
        return f"{self.device_type}:{self.id}"

    def __repr__(self) -> str:
        return f"DeviceRef.{self.device_type.name}(id={self.id})"
