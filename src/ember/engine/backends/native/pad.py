"""Native lowering of `pad`: numpy's `pad`, whose three modes are MAX's."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.pad import PAD, empty_axis_pad_error

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_pad"]


@lowers(PAD)
def lower_pad(ctx: LoweringContext, node: Node) -> StepFn:
    widths, mode = node.attrs["paddings"], node.attrs["mode"]
    pairs = list(zip(widths[::2], widths[1::2], strict=True))

    def run(rt, slot, x):
        if mode != "constant":
            for axis, (size, pair) in enumerate(zip(x.shape, pairs, strict=True)):
                if size == 0 and any(pair):
                    raise empty_axis_pad_error(mode, axis)
            return np.pad(x, pairs, mode=mode)
        return np.pad(x, pairs, constant_values=node.attrs["value"])

    return run
