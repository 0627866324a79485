"""Native lowering of `range`: the ends and step of this execution, checked against the
length the graph declares, then ``start + i * step``."""

from __future__ import annotations

from ember.graph import Node
from ember.graph.ops.range import RANGE, range_count, range_values, static_arg, wrong_length

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_range"]


@lowers(RANGE)
def lower_range(ctx: LoweringContext, node: Node) -> StepFn:
    """Inputs past the scalar arguments only order the step after the inputs that bind its
    dims; their data is not read."""
    args, out_dim = node.attrs["args"], node.attrs["out_dim"]
    dtype = node.attrs["dtype"].to_numpy()

    def run(rt, slot, *inputs):
        start, stop, step = (
            inputs[a[1]].reshape(()) if isinstance(a, tuple) else static_arg(a, rt.bindings, dtype)
            for a in args
        )
        count, expected = range_count(start, stop, step), out_dim.evaluate(rt.bindings)
        if count != expected:
            raise wrong_length(count, expected)
        return range_values(start, step, count, dtype)

    return run
