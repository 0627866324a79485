"""`InferenceSession`: compiles graphs into models for a set of devices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ember.driver import CPU, Device
from ember.graph import Graph

from .backends.native import NativeBackend
from .buffer_pool import BufferPool
from .compiler import compile_graph
from .model import Model

__all__ = ["InferenceSession"]


class InferenceSession:
    """Holds the backend, its threads and the result-buffer pool its models share.

    >>> import numpy as np
    >>> from ember.dtype import DType
    >>> from ember.graph import Graph, TensorType, Weight, ops
    >>> table = Weight("t", DType.float32, [3, 2])
    >>> with Graph("lookup", input_types=[TensorType(DType.int32, ["n"])]) as g:
    ...     g.output(ops.gather(table, g.inputs[0], axis=0))
    >>> weights = {"t": np.arange(6, dtype=np.float32).reshape(3, 2)}
    >>> model = InferenceSession().load(g, weights_registry=weights)
    >>> model.execute(np.array([2, 0], np.int32))[0].to_numpy()
    array([[4., 5.],
           [0., 1.]], dtype=float32)
    """

    def __init__(
        self, devices: Sequence[Device] | None = None, num_threads: int | None = None
    ) -> None:
        devices = list(devices) if devices is not None else [CPU()]
        for device in devices:
            if not isinstance(device, Device):
                raise TypeError(f"devices must be ember.driver devices, got {device!r}")
            if not device.is_host:
                raise ValueError(f"{device} is not supported: this build runs on the host CPU")
        self.devices = devices
        self._backend = NativeBackend(num_threads)
        self._pool = BufferPool()

    @property
    def num_threads(self) -> int:
        return self._backend.num_threads

    def load(self, graph: Graph, weights_registry: Mapping[str, Any] | None = None) -> Model:
        """Compile `graph` and bind its weights (arrays that already fit are not copied).

        Raises:
            ValueError / TypeError: see `compile_graph`.
        """
        if not isinstance(graph, Graph):
            raise TypeError(f"load takes a Graph, got {type(graph).__name__}")
        plan = compile_graph(graph, weights_registry, self._backend)
        return Model(plan, self._backend, self._pool)
