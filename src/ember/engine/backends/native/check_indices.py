"""Native lowering of `check_indices`: one vectorized pass, then the ids themselves."""

from __future__ import annotations

from ember.graph import Node

from .gather import out_of_range_error
from .lowering import Decode, StepFn

__all__ = ["lower_check_indices"]


def lower_check_indices(node: Node, decode: Decode | None) -> StepFn:
    size = node.attrs["size"]

    def run(rt, slot, ids):
        flat = ids.reshape(-1)
        bad = (flat < 0) | (flat >= size)
        if bad.any():
            raise out_of_range_error(ids, int(bad.argmax()), size, "error")
        return ids

    return run
