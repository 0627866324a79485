"""Native lowering of `ops.random`: Threefry-2x32 words of each position under the seed
(`backends/threefry.py`, the same arithmetic as on `xla`), made uniform or normal values:
normal ones in float64, where `xla` takes float32 for float32 and narrower values."""

from __future__ import annotations

import math

import numpy as np

from ember.graph import Node
from ember.graph.ops.random import RANDOM

from ..threefry import random_words, unit_interval, unit_pair
from .lowering import LoweringContext, StepFn, lowers
from .rounding import rounded

__all__ = ["lower_random"]


@lowers(RANDOM)
def lower_random(ctx: LoweringContext, node: Node) -> StepFn:
    """The node's inputs after the seed only order its step after the inputs that bind its
    dims; their data is not read."""
    attrs = node.attrs
    dtype = node.result_types[0].dtype.to_numpy()
    wide = dtype == np.float64

    def run(rt, slot, seed, *binders):
        shape = attrs["shape"].evaluate(rt.bindings)
        x0, x1 = random_words(np, seed, math.prod(shape))
        if attrs["distribution"] == "uniform":
            values = attrs["low"] + attrs["span"] * unit_interval(np, x0, x1, wide)
            values = values if wide else values.astype(np.float32).astype(dtype)
            values = np.where(values >= attrs["high"], dtype.type(attrs["below_high"]), values)
        else:
            u1, u2 = unit_pair(np, x0, x1, wide, np.float64)
            z = np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)
            values = rounded(attrs["mean"] + attrs["std"] * z, dtype)
        return values.astype(dtype, copy=False).reshape(shape)

    return run
