"""Native lowering of `ops.random`: Threefry-2x32 words of each position under the seed
(`backends/threefry.py`, the same arithmetic as on `xla`), made uniform or normal values."""

from __future__ import annotations

import math

import numpy as np

from ember.graph import Node
from ember.graph.ops.random import RANDOM

from ..threefry import random_words
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
        key = int(seed[0])
        x0, x1 = random_words(
            np, np.uint32(key & 0xFFFFFFFF), np.uint32(key >> 32), math.prod(shape)
        )
        if attrs["distribution"] == "uniform":
            values = attrs["low"] + attrs["span"] * _unit(x0, x1, wide)
            values = values if wide else values.astype(np.float32).astype(dtype)
            values = np.where(values >= attrs["high"], dtype.type(attrs["below_high"]), values)
        else:
            u1, u2 = _unit_pair(x0, x1, wide)
            z = np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)
            values = rounded(attrs["mean"] + attrs["std"] * z, dtype)
        return values.astype(dtype, copy=False).reshape(shape)

    return run


def _unit(x0: np.ndarray, x1: np.ndarray, wide: bool) -> np.ndarray:
    """float64 in `[0, 1)`: from 53 random bits for float64 values, else from 24."""
    if wide:
        return ((x0 >> 5).astype(np.float64) * 2.0**26 + (x1 >> 6)) * 2.0**-53
    return (x0 >> 8).astype(np.float64) * 2.0**-24


def _unit_pair(x0: np.ndarray, x1: np.ndarray, wide: bool) -> tuple[np.ndarray, np.ndarray]:
    """Two uniforms in float64 for Box-Muller, the first in `(0, 1]` (its log is finite): from
    32 random bits each for float64 values, from 24 for narrower ones (as `xla` draws them)."""
    if wide:
        return (x0.astype(np.float64) + 1) * 2.0**-32, x1.astype(np.float64) * 2.0**-32
    return ((x0 >> 8).astype(np.float64) + 1) * 2.0**-24, (x1 >> 8).astype(np.float64) * 2.0**-24
