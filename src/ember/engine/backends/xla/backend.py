"""`XlaBackend`: graphs run by JAX/XLA on the devices JAX sees, CPU, GPU or TPU.

`DeviceRef.CPU(i)` is JAX's i-th CPU device and `DeviceRef.GPU(i)` its i-th accelerator. For
N CPU devices, set `XLA_FLAGS=--xla_force_host_platform_device_count=N` before jax is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from ember.driver import CPU, Accelerator, Device
from ember.graph import DeviceRef, Graph

from ..base import Backend
from . import (  # noqa: F401 - each registers its lowerings
    allgather,
    argmax,
    argmin,
    argsort,
    broadcast_to,
    call,
    cast,
    check_indices,
    collectives,
    concat,
    cond,
    cumsum,
    debug_print,
    dequantize,
    elementwise,
    embedding_bag,
    embedding_bag_collection,
    gather,
    gather_nd,
    layer_norm,
    logsumexp,
    masked_scatter,
    matmul,
    nonzero,
    pad,
    qmatmul,
    reducescatter,
    reduction,
    repeat_interleave,
    rms_norm,
    scatter,
    shape,
    shape_to_tensor,
    sharded_embedding_bag_collection,
    sharded_gather,
    sharded_logsumexp,
    sharded_top_k,
    softmax,
    top_k,
    transpose,
    unary,
    while_loop,
)
from . import random as random_lowering  # noqa: F401 - not to shadow the stdlib's
from . import range as range_lowering  # noqa: F401 - not to shadow the builtin
from .devices import accelerators, host_devices
from .executable import XlaExecutable
from .lowering import LOWERINGS

__all__ = ["XlaBackend"]


class XlaBackend(Backend):
    name = "xla"
    lowerings = LOWERINGS

    def __init__(self) -> None:
        self._cpus = host_devices()
        self._accelerators = accelerators()

    @property
    def devices(self) -> list[Device]:
        return [CPU(i) for i in range(len(self._cpus))] + [
            Accelerator(i) for i in range(len(self._accelerators))
        ]

    def supports(self, device: DeviceRef) -> bool:
        return device.id < len(self._cpus if device.is_cpu() else self._accelerators)

    def device_of(self, device: DeviceRef) -> jax.Device:
        return (self._cpus if device.is_cpu() else self._accelerators)[device.id]

    def compile(self, graph: Graph, weights: Mapping[str, np.ndarray]) -> XlaExecutable:
        return XlaExecutable(graph, weights, self.device_of, self.debug_print)

    def accepts(self, value: Any) -> bool:
        return isinstance(value, jax.Array)
