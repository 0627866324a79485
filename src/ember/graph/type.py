"""The type of a graph value: element type, shape and device.

>>> TensorType(DType.int32, ["batch", 16], DeviceRef.CPU())
TensorType(int32, [Dim('batch'), Dim(16)], cpu:0)
>>> TensorType(DType.int32, [3]).cast(DType.float32)
TensorType(float32, [Dim(3)], cpu:0)
>>> BufferType(DType.uint8, [1], DeviceRef.CPU(1)).as_tensor()
TensorType(uint8, [Dim(1)], cpu:1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ember.dtype import DType

from .device import DeviceRef
from .dim import StaticDim
from .shape import Shape, ShapeLike

__all__ = ["BufferType", "TensorType", "Type", "Typed"]


@dataclass(frozen=True, init=False)
class TensorType:
    dtype: DType
    shape: Shape
    device: DeviceRef

    def __init__(self, dtype: DType, shape: ShapeLike, device: DeviceRef | None = None) -> None:
        if not isinstance(dtype, DType):
            raise TypeError(f"dtype must be a DType, got {dtype!r}")
        if device is None:
            device = DeviceRef.CPU()
        if not isinstance(device, DeviceRef):
            raise TypeError(f"device must be a DeviceRef, got {device!r}")
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "shape", Shape(shape))
        object.__setattr__(self, "device", device)

    @property
    def rank(self) -> int:
        return len(self.shape)

    def cast(self, dtype: DType) -> TensorType:
        """This type with another element type: the same shape and device."""
        return TensorType(dtype, self.shape, self.device)

    def num_elements(self) -> int:
        """The number of elements of a static shape.

        Raises:
            RuntimeError: a dim is symbolic (MAX's class).
        """
        if not all(isinstance(d, StaticDim) for d in self.shape):
            raise RuntimeError(f"{self.shape} has symbolic dims: its size is not known yet")
        return math.prod(int(d) for d in self.shape)

    def __hash__(self) -> int:
        return hash((self.dtype, tuple(self.shape), self.device))

    def __repr__(self) -> str:
        return f"TensorType({self.dtype!r}, {self.shape}, {self.device})"


@dataclass(frozen=True, init=False)
class BufferType(TensorType):
    """MAX's type of a graph input that is a mutable buffer. Ember takes buffers as inputs for
    MAX's signal buffers (`nn.Signals`), which its collectives accept and need not read;
    ops read tensors, so a buffer value is no op's operand."""

    def cast(self, dtype: DType) -> BufferType:
        return BufferType(dtype, self.shape, self.device)

    def as_tensor(self) -> TensorType:
        """The tensor type of the same dtype, shape and device."""
        return TensorType(self.dtype, self.shape, self.device)

    def __hash__(self) -> int:
        return hash(("buffer", self.dtype, tuple(self.shape), self.device))

    def __repr__(self) -> str:
        return f"BufferType({self.dtype!r}, {self.shape}, {self.device})"


Type = TensorType
"""MAX's base of graph types, for annotations and `isinstance`: every ember type (a
`BufferType` too) is a `TensorType`."""


class Typed:
    """What a graph value and a weight both read off their `type`."""

    __slots__ = ()
    type: TensorType

    @property
    def dtype(self) -> DType:
        return self.type.dtype

    @property
    def shape(self) -> Shape:
        return self.type.shape

    @property
    def device(self) -> DeviceRef:
        return self.type.device

    @property
    def rank(self) -> int:
        return self.type.rank
