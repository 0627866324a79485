"""Native lowerings of ops that only reinterpret or move host memory: views, not copies."""

from __future__ import annotations

from ember.graph import Node
from ember.graph.ops.check_indices import CHECK_INDICES
from ember.graph.ops.distributed_broadcast import BROADCAST
from ember.graph.ops.reshape import RESHAPE
from ember.graph.ops.slice import SLICE
from ember.graph.ops.transfer import TRANSFER_TO

from .lowering import Decode, StepFn, lowers

__all__ = ["VIEW_OPS", "lower_broadcast", "lower_reshape", "lower_slice", "lower_transfer"]

VIEW_OPS = frozenset({RESHAPE, SLICE, TRANSFER_TO, BROADCAST, CHECK_INDICES})
"""Ops whose result may be their input's memory (or, for a broadcast, one array on several
devices): an output from one is copied before the caller gets it."""


@lowers(RESHAPE)
def lower_reshape(node: Node, decode: Decode | None) -> StepFn:
    shape = node.attrs["shape"]

    def run(rt, slot, x):
        return x.reshape(shape.evaluate(rt.bindings))

    return run


@lowers(SLICE)
def lower_slice(node: Node, decode: Decode | None) -> StepFn:
    index = node.attrs["index"]

    def run(rt, slot, x):
        return x[index]

    return run


@lowers(TRANSFER_TO)
def lower_transfer(node: Node, decode: Decode | None) -> StepFn:
    """Every native device is host memory, so a transfer is the same array."""

    def run(rt, slot, x):
        return x

    return run


@lowers(BROADCAST)
def lower_broadcast(node: Node, decode: Decode | None) -> StepFn:
    copies = len(node.result_types)

    def run(rt, slot, x):
        return x if copies == 1 else (x,) * copies

    return run
