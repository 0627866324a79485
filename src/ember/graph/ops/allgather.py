"""`allgather(inputs, signal_buffers=None, axis=0)`: one value per device, concatenated along
`axis`, whole on every device (MAX's `ops.allgather`; its signal buffers are taken and not
read, see `signal_buffers`).

>>> from ember.graph import DeviceRef, Graph, TensorType
>>> types = [TensorType(DType.float32, ["batch", 500], DeviceRef.CPU(i)) for i in range(2)]
>>> with Graph("g", input_types=types) as g:
...     on_0, on_1 = allgather(g.inputs, axis=-1)
>>> on_1.shape, on_1.device
([Dim('batch'), Dim(1000)], DeviceRef.CPU(id=1))
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..dim import StaticDim
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .axis import normalize_axis
from .per_device import per_device_values

__all__ = ["ALLGATHER", "allgather"]

ALLGATHER = Op("allgather", cross_device=True)


def allgather(
    inputs: Iterable[Any], signal_buffers: Iterable[Any] | None = None, axis: int = 0
) -> list[TensorValue]:
    """The inputs concatenated along `axis`, in their order, on each input's device.

    Raises:
        TypeError: `signal_buffers` is not iterable (an axis given by position, say).
        ValueError: no inputs, two on one device, a scalar, `axis` not static in every input,
            or shapes that differ off `axis`.
        TypeError: dtypes that differ.
        AxisError: `axis` is out of range.
    """
    values = per_device_values("allgather", inputs, signal_buffers)
    devices = [v.device for v in values]
    first = values[0]
    if first.rank == 0:
        raise ValueError("allgather: takes values of rank 1 or more, got a scalar")
    axis = normalize_axis("allgather", axis, first.rank)
    for v in values:
        if v.rank != first.rank or any(
            a != b for i, (a, b) in enumerate(zip(v.shape, first.shape, strict=True)) if i != axis
        ):
            raise ValueError(f"allgather: shapes differ off axis {axis}: {first.shape}, {v.shape}")
        if not isinstance(v.shape[axis], StaticDim):
            raise ValueError(f"allgather: axis {axis} must be static, got {v.shape}")
    sizes = tuple(int(v.shape[axis]) for v in values)
    shape = list(first.shape)
    shape[axis] = StaticDim(sum(sizes))
    results = [TensorType(first.dtype, shape, d) for d in devices]
    attrs = {"axis": axis, "sizes": sizes}
    return list(current_graph().add_node(ALLGATHER, values, attrs, results))
