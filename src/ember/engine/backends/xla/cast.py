"""XLA lowering of `cast`: XLA's conversion (round to nearest even, as numpy and ml_dtypes)."""

from __future__ import annotations

import jax

from ember.graph import Node
from ember.graph.ops.cast import CAST

from .lowering import LoweringContext, lowers

__all__ = ["lower_cast"]


@lowers(CAST)
def lower_cast(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    return x.astype(node.attrs["dtype"].to_numpy())
