"""XLA lowering of `nonzero`: `jax.numpy.nonzero` at the size the graph declares (shapes are
static under jit); the count is checked on the device and raises after the segment runs.
Floats are compared by their bits, so that subnormal values count, as numpy counts them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ember.graph import Node
from ember.graph.ops.nonzero import NONZERO, nonzero_error

from .lowering import LoweringContext, lowers
from .result_memory import refuse_past_memory

__all__ = ["lower_nonzero", "refuse_data_sized"]


@lowers(NONZERO)
def lower_nonzero(ctx: LoweringContext, node: Node, x: jax.Array, *binders: jax.Array) -> jax.Array:
    """Inputs past the first only order the node after those that bind `out_dim` (one that
    names a new dim is refused at load: `refuse_data_sized`)."""
    expected = node.attrs["out_dim"].evaluate(ctx.bindings)
    refuse_past_memory("nonzero", expected, expected * max(x.ndim, 1) * 8)
    nonzero = _nonzero(x)
    count = jnp.count_nonzero(nonzero).astype(jnp.int64)
    ctx.require(count == expected, [count, expected], lambda facts: nonzero_error(*facts))
    coordinates = jnp.nonzero(nonzero, size=expected, fill_value=0)
    return jnp.stack(coordinates, axis=-1).astype(jnp.int64)


def refuse_data_sized(nodes: list[Node]) -> None:
    """Raises ValueError at load for a `nonzero` whose count is a new dim: its size would be
    the data's, and XLA compiles static shapes."""
    for node in nodes:
        if node.op is NONZERO and node.attrs["binds"] is not None:
            raise ValueError(
                f"nonzero: out_dim {node.attrs['binds']!r} is bound by no graph input, so its "
                "size is the data's, and the xla backend compiles static shapes; give out_dim "
                "as a number or a dim an input binds (the count is checked), or use the native "
                "backend"
            )


def _nonzero(x: jax.Array) -> jax.Array:
    """Where `x` is not zero; a float by its bits (all but the sign), since XLA's CPU code
    treats subnormal values as zero in comparisons."""
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return x != 0
    bits = lax.bitcast_convert_type(x, jnp.dtype(f"uint{8 * x.dtype.itemsize}"))
    return (bits & ~np.array(1 << (8 * x.dtype.itemsize - 1)).astype(bits.dtype)) != 0
