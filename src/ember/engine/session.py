"""`InferenceSession`: compiles graphs into models on one backend, for a set of devices."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from ember.driver import CPU, Device, accelerator_count
from ember.graph import DeviceRef, Graph, Node
from ember.graph.block import with_blocks
from ember.graph.ops.constant import WEIGHT

from .backends import Backend, make_backend
from .model import Model
from .weights import bind_weights

__all__ = ["InferenceSession"]


class InferenceSession:
    """Holds the backend (`"auto"`, `"native"` or `"xla"`) its models run on.

    Auto picks the native backend when every device is the host CPU, and XLA otherwise. On the
    native backend `num_threads` sets the kernels' threads and `max_idle_bytes` caps the idle
    result buffers kept for reuse (1 GiB by default; a large one is freed after ~1 s idle).

    >>> import numpy as np
    >>> from ember.dtype import DType
    >>> from ember.graph import Graph, TensorType, Weight, ops
    >>> table = Weight("t", DType.float32, [3, 2])
    >>> with Graph("lookup", input_types=[TensorType(DType.int32, ["n"])]) as g:
    ...     g.output(ops.gather(table, g.inputs[0], axis=0))
    >>> weights = {"t": np.arange(6, dtype=np.float32).reshape(3, 2)}
    >>> session = InferenceSession()
    >>> session.backend
    'native'
    >>> session.load(g, weights_registry=weights).execute(np.array([2, 0], np.int32))[0].to_numpy()
    array([[4., 5.],
           [0., 1.]], dtype=float32)
    """

    def __init__(
        self,
        devices: Sequence[Device] | None = None,
        num_threads: int | None = None,
        backend: str = "auto",
        max_idle_bytes: int | None = None,
    ) -> None:
        if isinstance(devices, str | Device):
            raise TypeError(
                f"devices is a list of ember.driver devices (e.g. [CPU()]), got {devices!r}"
            )
        devices = list(devices) if devices is not None else []
        devices = devices or [CPU()]  # none given: the host CPU, as MAX's () means
        for device in devices:
            if not isinstance(device, Device):
                raise TypeError(f"devices must be ember.driver devices, got {device!r}")
        self.devices = devices
        self._backend: Backend = make_backend(backend, devices, num_threads, max_idle_bytes)
        for device in devices:
            if not self._backend.supports(DeviceRef.from_device(device)):
                raise ValueError(
                    f"{device} is not a device of the {self.backend} backend; "
                    f"{_available(self._backend)}"
                )

    @property
    def backend(self) -> str:
        """The name of the backend this session's models run on."""
        return self._backend.name

    @property
    def num_threads(self) -> int | None:
        """The native backend's CPU threads (None on XLA, which sets its own)."""
        return getattr(self._backend, "num_threads", None)

    def set_debug_print_options(
        self,
        style: str = "COMPACT",
        precision: int = 6,
        output_directory: str | os.PathLike | None = None,
    ) -> None:
        """How `ops.print` writes in this session's models, from their next execute on: MAX's
        styles `"COMPACT"`, `"FULL"` (every value, ``precision`` digits), `"NONE"` and
        `"BINARY"` (raw bytes, a file per label in ``output_directory``); see
        `ember.engine.debug_print`.

        Raises:
            TypeError: an unknown style, or a precision that is not an int.
            ValueError: a negative precision; `"BINARY"` without an existing directory.
            NotImplementedError: `"BINARY_MAX_CHECKPOINT"` (MAX's own checkpoint files).
        """
        self._backend.debug_print.set(style, precision, output_directory)

    def load(self, graph: Graph, weights_registry: Mapping[str, Any] | None = None) -> Model:
        """Compile `graph` and bind its weights (arrays that already fit are not copied).

        Raises:
            ValueError: the graph has no outputs, uses a device this session's backend lacks,
                or a weight is missing or of the wrong shape.
            TypeError: a weight's dtype differs, or the registry is not a mapping.
        """
        if not isinstance(graph, Graph):
            raise TypeError(f"load takes a Graph, got {type(graph).__name__}")
        live = graph.live_nodes()
        self._check_devices(list(with_blocks(live)))
        used = [n.attrs["name"] for n in live if n.op is WEIGHT]
        weights = bind_weights(graph, weights_registry, used)
        executable = self._backend.compile(graph, weights)
        return Model(graph, executable, self._backend, weights)

    def _check_devices(self, live: list[Node]) -> None:
        for node in live:
            for t in node.result_types:
                if not self._backend.supports(t.device):
                    raise ValueError(
                        f"the graph places a value on {t.device} (its {node.op}), which the "
                        f"{self.backend} backend of this session cannot run on; "
                        f"{_available(self._backend)}"
                    )


def _available(backend: Backend) -> str:
    devices = ", ".join(str(d) for d in backend.devices)
    count = accelerator_count()
    if count == 0:
        where = "no accelerator is visible (ember sees GPUs through jax[cuda])"
    else:
        where = f"{count} accelerator(s) visible: pass devices=[Accelerator(i)] to the session"
    if backend.name == "xla":
        where += (
            "; for N CPU devices, set XLA_FLAGS=--xla_force_host_platform_device_count=N "
            "before jax is imported"
        )
    return f"it has {devices}; {where}"
