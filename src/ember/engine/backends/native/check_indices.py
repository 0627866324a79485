"""Native lowering of `check_indices`: one vectorized pass over the ids."""

from __future__ import annotations

import numpy as np

from ember.errors import out_of_range_error
from ember.graph import Node
from ember.graph.ops.check_indices import CHECK_INDICES

from .lowering import Decode, StepFn, lowers

__all__ = ["lower_check_indices"]


@lowers(CHECK_INDICES)
def lower_check_indices(node: Node, decode: Decode | None) -> StepFn:
    size = node.attrs["size"]
    clamp = node.attrs["out_of_range"] == "clamp"

    def run(rt, slot, ids):
        if clamp:
            top = min(size - 1, int(np.iinfo(ids.dtype).max))
            return np.clip(ids, 0, top).astype(ids.dtype, copy=False)
        flat = ids.reshape(-1)
        bad = (flat < 0) | (flat >= size)
        if bad.any():
            at = int(bad.argmax())
            raise out_of_range_error(ids.shape, at, flat[at], size, "error")
        return ids

    return run
