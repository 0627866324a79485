"""`NativeBackend`: numpy and numba kernels on the host CPU, where every device id is a logical
CPU device sharing host memory."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ember.driver import CPU, Device
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
from .buffer_pool import DEFAULT_MAX_IDLE_BYTES, BufferPool
from .executable import NativeExecutable
from .huge_pages import advise as advise_huge_pages
from .kernels import background
from .lowering import LOWERINGS
from .plan import build_plan
from .threads import check_num_threads

__all__ = ["NativeBackend"]

LOAD_WAIT_SECONDS = 1.0
"""How long a `load` waits for the kernels it asked for: long enough to load them from numba's
disk cache, well short of compiling them (numpy serves lookups until they are ready)."""


class NativeBackend(Backend):
    """Its result-buffer pool is shared by the models it compiles."""

    name = "native"
    lowerings = LOWERINGS

    def __init__(self, num_threads: int | None = None, max_idle_bytes: int | None = None) -> None:
        self.num_threads = check_num_threads(num_threads)
        self._pool = BufferPool(
            DEFAULT_MAX_IDLE_BYTES if max_idle_bytes is None else max_idle_bytes
        )

    @property
    def devices(self) -> list[Device]:
        return [CPU()]

    def supports(self, device: DeviceRef) -> bool:
        return device.is_cpu()

    def compile(self, graph: Graph, weights: Mapping[str, np.ndarray]) -> NativeExecutable:
        plan = build_plan(graph, weights, self.debug_print)
        executable = NativeExecutable(plan, self._pool, self.num_threads)
        advise_huge_pages(weights.values())
        background.wait(LOAD_WAIT_SECONDS)  # kernels in numba's disk cache load within it
        return executable
