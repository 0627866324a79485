"""`NativeBackend`: which lowering runs each op, and the threads the kernels use."""

from __future__ import annotations

import threading

import numba

from ember.graph import Node

from .cast import lower_cast
from .check_indices import lower_check_indices
from .collectives import lower_allreduce_sum
from .dequantize import lower_dequantize
from .elementwise import ELEMENTWISE_OPS, lower_elementwise
from .gather import lower_gather
from .lowering import Decode, Lowering, StepFn
from .shape import lower_broadcast, lower_reshape, lower_slice, lower_transfer

__all__ = ["NativeBackend"]

LOWERINGS: dict[str, Lowering] = {
    "gather": lower_gather,
    "dequantize": lower_dequantize,
    "cast": lower_cast,
    "reshape": lower_reshape,
    "slice": lower_slice,
    "transfer_to": lower_transfer,
    "broadcast": lower_broadcast,
    "allreduce_sum": lower_allreduce_sum,
    "check_indices": lower_check_indices,
    **dict.fromkeys(ELEMENTWISE_OPS, lower_elementwise),
}

VIEW_OPS = frozenset({"reshape", "slice", "transfer_to", "broadcast", "check_indices"})
"""Ops whose result may be their input's memory (or, for a broadcast, one array on several
devices): an output from one is copied before the caller gets it."""

_threads_set: dict[int, int] = {}
"""The numba thread count ember last set, per calling thread (setting it costs microseconds)."""


class NativeBackend:
    """Host memory for every device; CPU device ids are logical devices sharing it."""

    name = "native"
    view_ops = VIEW_OPS

    def __init__(self, num_threads: int | None = None) -> None:
        limit = numba.config.NUMBA_NUM_THREADS
        if num_threads is None:
            num_threads = limit
        if isinstance(num_threads, bool) or not isinstance(num_threads, int):
            raise TypeError(f"num_threads must be an int, got {num_threads!r}")
        if not 1 <= num_threads <= limit:
            raise ValueError(f"num_threads must be in [1, {limit}], got {num_threads}")
        self.num_threads = num_threads

    def supports(self, device_kind: str) -> bool:
        return device_kind == "cpu"

    def lower(self, node: Node, decode: Decode | None = None) -> StepFn:
        """Raises NotImplementedError for an op this backend has no lowering for."""
        lowering = LOWERINGS.get(node.op)
        if lowering is None:
            raise NotImplementedError(f"the native backend has no lowering for op {node.op!r}")
        return lowering(node, decode)

    def enter(self) -> None:
        """Per execute: numba's thread count is per calling thread, so set it here."""
        thread = threading.get_ident()
        if _threads_set.get(thread) != self.num_threads:
            numba.set_num_threads(self.num_threads)
            _threads_set[thread] = self.num_threads
