"""XLA lowering of `check_indices`: an unsplit lookup's `out_of_range`, applied once up front."""

from __future__ import annotations

import jax

from ember.graph import Node
from ember.graph.ops.check_indices import CHECK_INDICES

from .gather import clamped, valid_ids
from .lowering import LoweringContext, lowers

__all__ = ["lower_check_indices"]


@lowers(CHECK_INDICES)
def lower_check_indices(ctx: LoweringContext, node: Node, ids: jax.Array) -> jax.Array:
    size = node.attrs["size"]
    if node.attrs["out_of_range"] == "clamp":
        return clamped(ids, size)
    ctx.check(node, ids, ~valid_ids(ids, size, allow_negative=False), size, "error", 0)
    return ids
