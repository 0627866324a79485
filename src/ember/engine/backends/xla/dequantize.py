"""XLA lowering of `dequantize`: GGUF blocks decoded in `jax.numpy`, in the same jitted function
as the gather before it, so XLA fuses the two and decodes only the rows looked up."""

from __future__ import annotations

import jax

from ember.graph import Node
from ember.graph.ops.dequantize import DEQUANTIZE

from .decode import decode
from .lowering import LoweringContext, lowers

__all__ = ["lower_dequantize"]


@lowers(DEQUANTIZE)
def lower_dequantize(ctx: LoweringContext, node: Node, blocks: jax.Array) -> jax.Array:
    values = decode(node.attrs["encoding"].name, blocks)
    return values.astype(node.result_types[0].dtype.to_numpy())
