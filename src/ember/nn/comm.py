"""MAX's `nn.comm`: `Allreduce`, a layer over `ops.allreduce.sum`, and `Signals`, MAX's signal
buffers, which its GPU collectives synchronize through. Ember's
exchanges (shared memory natively, XLA's collectives, `jax.distributed` across processes)
synchronize themselves, so a signal buffer is one byte that nothing reads; it is made so that
MAX's multi-device code, which declares `signals.input_types()` among a graph's inputs and
passes `signals.buffers()` to `execute`, runs unchanged, on CPU devices too.

>>> from ember.graph import DeviceRef
>>> signals = Signals([DeviceRef.CPU(0), DeviceRef.CPU(1)])
>>> signals.input_types()
[BufferType(uint8, [Dim(1)], cpu:0), BufferType(uint8, [Dim(1)], cpu:1)]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ember.driver import Buffer
from ember.dtype import DType
from ember.graph import BufferType, DeviceRef, TensorValue, ops

from .module import Module

__all__ = ["Allreduce", "Signals"]


class Signals:
    """One signal buffer per device, on that device."""

    NUM_BYTES = 1
    """The size of each signal buffer (MAX's are hundreds of MiB of GPU scratch)."""

    def __init__(self, devices: Iterable[DeviceRef]) -> None:
        """Raises:
        TypeError: a device that is not a `DeviceRef` (or a driver device).
        ValueError: no devices, or one device twice.
        """
        self.devices = [DeviceRef.from_device(d) for d in devices]
        if not self.devices:
            raise ValueError("Signals: needs at least one device")
        if len(set(self.devices)) != len(self.devices):
            raise ValueError(f"Signals: each device once, got {self.devices}")

    def input_types(self) -> list[BufferType]:
        """The graph input types of the signal buffers, one per device, in order."""
        return [BufferType(DType.uint8, [Signals.NUM_BYTES], d) for d in self.devices]

    def buffers(self) -> list[Buffer]:
        """The buffers to pass to `execute` for those inputs, one per device, in order."""
        return [
            Buffer.zeros((Signals.NUM_BYTES,), DType.uint8, d.to_device()) for d in self.devices
        ]

    def __repr__(self) -> str:
        return f"Signals({self.devices})"


class Allreduce(Module):
    """MAX's layer over `ops.allreduce.sum`: the sum of one value per device, on each."""

    def __init__(self, num_accelerators: int) -> None:
        """Raises ValueError: fewer than one device (MAX's name for them is kept; any devices
        ember runs on count, CPU devices too)."""
        super().__init__()
        if isinstance(num_accelerators, bool) or not isinstance(num_accelerators, int):
            raise ValueError(f"Allreduce: num_accelerators is an int, got {num_accelerators!r}")
        if num_accelerators < 1:
            raise ValueError("At least one accelerator required for Allreduce")
        self.num_accelerators = num_accelerators

    def __call__(
        self, inputs: Iterable[Any], signal_buffers: Iterable[Any] | None = None
    ) -> list[TensorValue]:
        """Raises ValueError: a number of inputs other than `num_accelerators`."""
        values = list(inputs)
        if len(values) != self.num_accelerators:
            raise ValueError(f"Allreduce: {len(values)} inputs for {self.num_accelerators} devices")
        return ops.allreduce.sum(values, signal_buffers)
