"""Native lowering of `rms_norm`: in float64, rounded where MAX's variant rounds."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.rms_norm import RMS_NORM

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_rms_norm"]


@lowers(RMS_NORM)
def lower_rms_norm(ctx: LoweringContext, node: Node) -> StepFn:
    epsilon, offset = node.attrs["epsilon"], node.attrs["weight_offset"]
    wide_product = node.attrs["multiply_before_cast"]
    dtype = node.result_types[0].dtype.to_numpy()

    def run(rt, slot, x, weight):
        if x.shape[-1] == 0:
            return np.empty(x.shape, dtype)
        x = x.astype(np.float64)
        scale = weight.astype(np.float64) + offset
        with np.errstate(all="ignore"):  # a row of zeros with epsilon 0: NaN, as IEEE gives
            normalized = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + epsilon)
            if not wide_product:  # Llama's: rounded to the dtype before the weight
                normalized = normalized.astype(dtype).astype(np.float64)
            return (normalized * scale).astype(dtype)

    return run
