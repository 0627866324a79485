"""Native lowering of `rms_norm`: in float64 (each row first scaled by a power of two, exactly,
so that no square overflows), rounded where MAX's variant rounds."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.layer_norm import check_features
from ember.graph.ops.rms_norm import RMS_NORM

from .layer_norm import scaled_rows
from .lowering import LoweringContext, StepFn, lowers
from .rounding import rounded

__all__ = ["lower_rms_norm"]


@lowers(RMS_NORM)
def lower_rms_norm(ctx: LoweringContext, node: Node) -> StepFn:
    epsilon, offset = node.attrs["epsilon"], node.attrs["weight_offset"]
    wide_product = node.attrs["multiply_before_cast"]
    dtype = node.result_types[0].dtype.to_numpy()

    def run(rt, slot, x, weight):
        check_features("rms_norm", x.shape[-1], weight=weight.shape[0])
        if x.shape[-1] == 0:
            return np.empty(x.shape, dtype)
        scale = weight.astype(np.float64) + offset
        with np.errstate(all="ignore"):  # a row of zeros with epsilon 0: NaN, as IEEE gives
            v, exponent = scaled_rows(x.astype(np.float64))
            mean_square = np.mean(v * v, axis=-1, keepdims=True)
            normalized = v / np.sqrt(mean_square + np.ldexp(epsilon, -2 * exponent))
            if not wide_product:  # Llama's: rounded to the dtype before the weight
                normalized = rounded(normalized, dtype).astype(np.float64)
            return rounded(normalized * scale, dtype)

    return run
