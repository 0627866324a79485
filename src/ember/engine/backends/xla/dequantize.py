"""XLA lowering of `dequantize`: GGUF blocks decoded in `jax.numpy`, in the same jitted function
as the gather before it, so XLA fuses the two and decodes only the rows looked up.

Rows that a gather's ``out_of_range="zero"`` zeroed are zero bytes, which several formats
decode to -0.0 (Q4_0's ``d * (q - 8)`` with ``d = 0``); the native backend, which decodes in
the gather, writes +0.0 rows. So after such a gather, a row of zero bytes decodes to +0.0
here too (a table's own row of zero bytes as well: no quantizer writes one for those formats).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.dequantize import DEQUANTIZE
from ember.graph.ops.gather import GATHER
from ember.graph.ops.sharded_gather import SHARDED_GATHER

from .decode import decode
from .lowering import LoweringContext, lowers

__all__ = ["lower_dequantize"]


@lowers(DEQUANTIZE)
def lower_dequantize(ctx: LoweringContext, node: Node, blocks: jax.Array) -> jax.Array:
    values = decode(node.attrs["encoding"].name, blocks)
    if _after_zeroing_gather(node):
        zeroed = jnp.all(blocks == 0, axis=-1, keepdims=True)
        values = jnp.where(zeroed, jnp.zeros((), values.dtype), values)
    return values.astype(node.result_types[0].dtype.to_numpy())


def _after_zeroing_gather(node: Node) -> bool:
    source = node.inputs[0].node
    return source.op in (GATHER, SHARDED_GATHER) and source.attrs["out_of_range"] == "zero"
