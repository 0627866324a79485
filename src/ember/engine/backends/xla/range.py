"""XLA lowering of `range`: ``start + i * step`` over the length the graph declares (shapes are
static under jit). Numbers and dims are known at tracing, and a wrong length raises there;
scalar graph values are checked on the device and raise after the segment runs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ember.graph import Node
from ember.graph.ops.range import RANGE, range_count, range_values, static_arg, wrong_length

from .lowering import LoweringContext, lowers

__all__ = ["lower_range"]


@lowers(RANGE)
def lower_range(ctx: LoweringContext, node: Node, *inputs: jax.Array) -> jax.Array:
    """Inputs past the scalar arguments only order the node after the inputs that bind its
    dims; their data is not read."""
    dtype = node.attrs["dtype"].to_numpy()
    expected = node.attrs["out_dim"].evaluate(ctx.bindings)
    start, stop, step = (
        inputs[a[1]].reshape(()) if isinstance(a, tuple) else static_arg(a, ctx.bindings, dtype)
        for a in node.attrs["args"]
    )
    if all(isinstance(a, np.ndarray) for a in (start, stop, step)):
        count = range_count(start, stop, step)
        if count != expected:
            raise wrong_length(count, expected)
    else:
        count, holds = _count(start, stop, step, expected)
        ctx.require(holds, [count, expected], lambda facts: wrong_length(*facts))
    wide = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    return range_values(start, step, max(expected, 0), dtype, jnp, wide)


def _count(start: jax.Array, stop: jax.Array, step: jax.Array, expected: int) -> tuple:
    """`range_count` on the device (-1 for a step of 0 or a length that is not finite), and
    whether it is `expected`. Integers are counted in unsigned arithmetic, exact over the
    whole range of 64-bit ends; floats in float64 (the executable enables it for a range of
    float graph values), as the native backend counts them."""
    x64 = jax.config.jax_enable_x64
    if jnp.issubdtype(jnp.result_type(start), jnp.integer):
        signed, unsigned = (jnp.int64, jnp.uint64) if x64 else (jnp.int32, jnp.uint32)
        if not 0 <= expected <= jnp.iinfo(signed).max:  # backwards, or longer than any array
            return jnp.asarray(-1, signed), jnp.asarray(False)
        if jnp.issubdtype(jnp.result_type(start), jnp.unsignedinteger):  # every step is up
            low, high, step = (jnp.asarray(v).astype(unsigned) for v in (start, stop, step))
            size = step
        else:
            start, stop, step = (jnp.asarray(v).astype(signed) for v in (start, stop, step))
            up = step > 0
            low, high = jnp.where(up, start, stop), jnp.where(up, stop, start)
            size = jnp.where(up, step, -step).astype(unsigned)  # -(-2**63) wraps to 2**63
        span = high.astype(unsigned) - low.astype(unsigned)  # exact where high > low
        size = jnp.where(size == 0, jnp.ones((), unsigned), size)
        count = jnp.where(high > low, span // size + (span % size != 0), jnp.zeros((), unsigned))
        holds = (step != 0) & (count == jnp.asarray(expected, unsigned))
        return jnp.where(step == 0, -1, count.astype(signed)), holds
    start, stop, step = (jnp.asarray(v).astype(jnp.float64) for v in (start, stop, step))
    span = (stop - start) / step
    finite = jnp.isfinite(span)
    count = jnp.maximum(0, jnp.ceil(jnp.where(finite, span, 0)))
    count = jnp.where(finite, count, -1).astype(jnp.int64)
    return count, count == expected
