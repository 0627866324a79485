"""`shard_and_stack(inputs, devices, axis=0)`: MAX's tensor-parallel placement of weights.
Each input is cut along `axis` into one equal piece per device, and device `i` gets the
`i`-th pieces of all inputs stacked on a new first axis (a composition of `stack`, `split`
and `transfer_to`).

>>> from ember.graph import DeviceRef, Graph, TensorType
>>> types = [TensorType(DType.float32, [10, 4])] * 2
>>> with Graph("g", input_types=types) as g:
...     first, second = shard_and_stack(g.inputs, [DeviceRef.CPU(0), DeviceRef.CPU(1)])
>>> second.shape, second.device
([Dim(2), Dim(5), Dim(4)], DeviceRef.CPU(id=1))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..device import DeviceRef
from ..dim import StaticDim
from .axis import normalize_axis
from .constant import as_value
from .rearrange import split
from .stack import stack

__all__ = ["shard_and_stack"]


def shard_and_stack(inputs: Sequence[Any], devices: Sequence[DeviceRef], axis: int = 0) -> list:
    """One value per device, `[len(inputs), ..., size // len(devices), ...]`.

    Raises:
        ValueError: no inputs or devices, inputs on different devices or of different shapes,
            a symbolic axis, or an axis the devices do not divide.
        GraphTypeError: inputs of different dtypes (stack's).
        TypeError: one device rather than a list of them.
        AxisError: `axis` is out of range.
    """
    values = [as_value(x) for x in inputs]
    if isinstance(devices, DeviceRef):
        raise TypeError("shard_and_stack: devices is a list of DeviceRefs, one per piece")
    devices = list(devices)
    if not values:
        raise ValueError("shard_and_stack: Must provide at least one input tensor.")
    if not devices:
        raise ValueError("shard_and_stack: Must provide at least one device.")
    if len({v.device for v in values}) != 1:
        raise ValueError(
            f"shard_and_stack: inputs must share one device, got {[v.device for v in values]}"
        )
    axis = normalize_axis("shard_and_stack", axis, values[0].rank)
    size = values[0].shape[axis]
    if not isinstance(size, StaticDim):
        raise ValueError(f"shard_and_stack: axis {axis} is symbolic ({size!r}); it must be static")
    if int(size) % len(devices):
        raise ValueError(
            f"shard_and_stack: Dimension size along axis {axis} ({int(size)}) must be evenly "
            f"divisible by number of devices ({len(devices)})"
        )
    pieces = split(stack(values), [int(size) // len(devices)] * len(devices), axis + 1)
    return [piece.to(device) for piece, device in zip(pieces, devices, strict=True)]
