"""Native lowerings of ops that only reinterpret or move host memory: views, not copies."""

from __future__ import annotations

from ember.graph import Node
from ember.graph.ops.distributed_broadcast import BROADCAST
from ember.graph.ops.rebind import REBIND, check_rebind
from ember.graph.ops.reshape import RESHAPE, reshaped
from ember.graph.ops.slice import SLICE, concrete_index, slice_too_long
from ember.graph.ops.transfer import TRANSFER_TO

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_broadcast", "lower_rebind", "lower_reshape", "lower_slice", "lower_transfer"]


@lowers(RESHAPE)
def lower_reshape(ctx: LoweringContext, node: Node) -> StepFn:
    shape = node.attrs["shape"]

    def run(rt, slot, x):
        return reshaped(x, shape, rt.bindings)

    return run


@lowers(REBIND)
def lower_rebind(ctx: LoweringContext, node: Node) -> StepFn:
    """The value itself, once its shape is checked; inputs past it only order the step after
    the inputs that bind the new dims."""
    attrs = node.attrs

    def run(rt, slot, x, *binders):
        check_rebind(attrs, x.shape, rt.bindings)
        return x

    return run


@lowers(SLICE)
def lower_slice(ctx: LoweringContext, node: Node) -> StepFn:
    index, needs, dim_ends = (node.attrs[k] for k in ("index", "needs", "dim_ends"))

    def run(rt, slot, x, *binders):
        """Inputs past the value only order the step after those that bind its dim ends."""
        for axis, size in needs.items():  # slices of symbolic dims: never shorter than typed
            if x.shape[axis] < size:
                raise slice_too_long(axis, x.shape[axis], size, index)
        return x[concrete_index(index, rt.bindings, x.shape) if dim_ends else index]

    return run


@lowers(TRANSFER_TO)
def lower_transfer(ctx: LoweringContext, node: Node) -> StepFn:
    """Every native device is host memory, so a transfer is the same array."""

    def run(rt, slot, x):
        return x

    return run


@lowers(BROADCAST)
def lower_broadcast(ctx: LoweringContext, node: Node) -> StepFn:
    copies = len(node.result_types)

    def run(rt, slot, x):
        return x if copies == 1 else (x,) * copies

    return run
