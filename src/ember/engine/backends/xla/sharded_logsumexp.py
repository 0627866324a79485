"""XLA lowering of `sharded_logsumexp`: each device reduces its own columns to `(max, sum of
exp(x - max))` per token, `lax.all_gather` hands every device every pair (8 bytes per token and
device), and each combines them in device order, as the native backend does."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ember.graph import Node
from ember.graph.ops.sharded_logsumexp import SHARDED_LOGSUMEXP

from .device_exchange import AXIS, DeviceExchange, exchange_of, padded
from .lowering import LoweringContext, lowers

__all__ = ["lower_sharded_logsumexp"]


@lowers(SHARDED_LOGSUMEXP)
def lower_sharded_logsumexp(ctx: LoweringContext, node: Node, *shards: jax.Array) -> tuple:
    rows = node.attrs["rows"]
    depth = max(max(rows), 1)

    def local(block: jax.Array) -> tuple[jax.Array]:
        real = jnp.arange(depth) < jnp.asarray(rows)[lax.axis_index(AXIS)]
        block = jnp.where(real, block.astype(jnp.float32), -jnp.inf)
        peak = jnp.max(block, axis=-1)
        shift = jnp.where(jnp.isfinite(peak), peak, 0)
        total = jnp.sum(jnp.exp(block - shift[:, None]), axis=-1)
        peaks = lax.all_gather(peak, AXIS)
        sums = lax.all_gather(total, AXIS)
        top = jnp.max(peaks, axis=0)
        common = jnp.where(jnp.isfinite(top), top, 0)
        shifts = jnp.where(jnp.isfinite(peaks), peaks, common)  # an all -inf shard adds 0
        scaled = sums * jnp.exp(shifts - common)
        combined = scaled[0]
        for part in range(1, len(rows)):  # in device order, as on the native backend
            combined = combined + scaled[part]
        return ((jnp.log(combined) + common)[:, None],)

    def make() -> DeviceExchange:
        return DeviceExchange(ctx, node, local, lambda shape: shape[0] * 8)

    exchange = exchange_of(ctx, node, make)
    shards = exchange.placed(shards)
    lead = next(s for s in shards if s is not None).shape[:-1]
    blocks = [padded(s, depth, 0) for s in shards]
    return tuple(None if lse is None else lse.reshape(*lead, 1) for (lse,) in exchange(blocks))
