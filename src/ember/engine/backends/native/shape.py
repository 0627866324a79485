"""Native lowerings of ops that only reinterpret or move host memory: views, not copies."""

from __future__ import annotations

from ember.graph import Node

from .lowering import Decode, StepFn

__all__ = ["lower_broadcast", "lower_reshape", "lower_slice", "lower_transfer"]


def lower_reshape(node: Node, decode: Decode | None) -> StepFn:
    shape = node.attrs["shape"]

    def run(rt, slot, x):
        return x.reshape(shape.evaluate(rt.bindings))

    return run


def lower_slice(node: Node, decode: Decode | None) -> StepFn:
    index = node.attrs["index"]

    def run(rt, slot, x):
        return x[index]

    return run


def lower_transfer(node: Node, decode: Decode | None) -> StepFn:
    """Every native device is host memory, so a transfer is the same array."""

    def run(rt, slot, x):
        return x

    return run


def lower_broadcast(node: Node, decode: Decode | None) -> StepFn:
    copies = len(node.result_types)

    def run(rt, slot, x):
        return x if copies == 1 else (x,) * copies

    return run
