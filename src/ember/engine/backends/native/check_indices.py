"""Native lowering of `check_indices`: one vectorized pass over the ids."""

from __future__ import annotations

import numpy as np

from ember.graph import Node

from .gather import out_of_range_error
from .lowering import Decode, StepFn

__all__ = ["lower_check_indices"]


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
            raise out_of_range_error(ids, int(bad.argmax()), size, "error")
        return ids

    return run
