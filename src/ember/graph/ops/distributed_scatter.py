"""`distributed_scatter(input_chunks, signal_buffers)`: MAX's data-parallel spread of chunks
from one root device: with `n` devices (named by their signal buffers, as in MAX, or by
`DeviceRef`s) and `k` chunks, each group of `ceil(n / k)` devices in turn gets its chunk (a
composition of `transfer_to`).

>>> from ember.graph import DeviceRef, Graph, TensorType
>>> types = [TensorType(DType.int64, [4]), TensorType(DType.int64, [3])]
>>> with Graph("g", input_types=types) as g:
...     out = distributed_scatter(g.inputs, [DeviceRef.CPU(i) for i in range(4)])
>>> [(v.shape, v.device.id) for v in out]
[([Dim(4)], 0), ([Dim(4)], 1), ([Dim(3)], 2), ([Dim(3)], 3)]
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..device import DeviceRef
from ..value import BufferValue, TensorValue
from .constant import as_value

__all__ = ["distributed_scatter"]


def distributed_scatter(input_chunks: Iterable[Any], signal_buffers: Iterable[Any]) -> list:
    """One value per device: device `i` holds chunk `min(i // ceil(n / k), k - 1)`.

    Raises:
        ValueError: no chunks, chunks on different devices, no devices or one twice, more
            chunks than devices, or a root (the chunks' device) that is not among them.
        TypeError: a device that is neither a `DeviceRef` nor a buffer value.
    """
    chunks: list[TensorValue] = [as_value(c) for c in input_chunks]
    if not chunks:
        raise ValueError("distributed_scatter requires at least 1 input chunk. Got: 0")
    root = chunks[0].device
    for i, chunk in enumerate(chunks):
        if chunk.device != root:
            raise ValueError(
                f"All input chunks must be on the same device. Chunk 0 is on {root}, but "
                f"chunk {i} is on {chunk.device}"
            )
    devices = [b.device if isinstance(b, BufferValue) else b for b in signal_buffers]
    for device in devices:
        if not isinstance(device, DeviceRef):
            raise TypeError(f"distributed_scatter: expected signal buffers, got {device!r}")
    if not devices or len(set(devices)) != len(devices):
        raise ValueError(
            f"distributed_scatter requires unique devices across signal buffers. Got: {devices}"
        )
    if len(chunks) > len(devices):
        raise ValueError(
            f"distributed_scatter: {len(chunks)} chunks for {len(devices)} devices; each chunk "
            "needs a device (MAX drops the chunks past them)"
        )
    if root not in devices:
        raise ValueError(f"input chunk device {root} not found in signal buffer devices: {devices}")
    group = math.ceil(len(devices) / len(chunks))
    return [chunks[min(i // group, len(chunks) - 1)].to(device) for i, device in enumerate(devices)]
