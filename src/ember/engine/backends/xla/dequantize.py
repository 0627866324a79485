"""XLA lowering of `dequantize`: GGUF blocks decoded in `jax.numpy`, in the same jitted function
as the gather before it, so XLA fuses the two and decodes only the rows looked up.

After a gather that zeroes out-of-range ids' rows, a row of zero bytes decodes to +0.0, as the
native backend's fused kernel writes it (`reads_zeroed_rows`; a table's own row of zero bytes
as well: no quantizer writes one for the formats that decode it to -0.0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.dequantize import DEQUANTIZE, reads_zeroed_rows

from .decode import decode
from .lowering import LoweringContext, lowers

__all__ = ["lower_dequantize"]


@lowers(DEQUANTIZE)
def lower_dequantize(ctx: LoweringContext, node: Node, blocks: jax.Array) -> jax.Array:
    values = decode(node.attrs["encoding"].name, blocks)
    if reads_zeroed_rows(node):
        zeroed = jnp.all(blocks == 0, axis=-1, keepdims=True)
        values = jnp.where(zeroed, jnp.zeros((), values.dtype), values)
    return values.astype(node.result_types[0].dtype.to_numpy())
