"""XLA lowering of `sharded_top_k`: on each device, `lax.top_k` of its own columns' order keys
(padding below every real key) gives `min(k, depth)` candidates with global int32 ids;
`lax.all_gather` hands every device all of them (`k * (itemsize + 4)` bytes per token and
device), and each device sorts them by key, then by id, and keeps `k`. The sort is by global id
among equal keys, so ties go to the lowest id whatever the split of the vocabulary."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ember.graph import Node
from ember.graph.ops.sharded_top_k import SHARDED_TOP_K

from .device_exchange import AXIS, DeviceExchange, exchange_of, padded
from .lowering import LoweringContext, lowers
from .top_k import order_keys

__all__ = ["lower_sharded_top_k"]

_NO_KEY = np.iinfo(np.int32).min
"""The key of a padding column: below every value's (-inf's key is above it)."""

_NO_ID = np.iinfo(np.int32).max
"""The id of a padding candidate: above every global id, and never among the k kept (the
shards hold at least k real columns between them)."""


@lowers(SHARDED_TOP_K)
def lower_sharded_top_k(ctx: LoweringContext, node: Node, *shards: jax.Array) -> tuple:
    k, rows, offsets = node.attrs["k"], node.attrs["rows"], node.attrs["offsets"]
    depth = max(max(rows), 1)
    keep = min(k, depth)
    itemsize = np.dtype(node.inputs[0].dtype.to_numpy()).itemsize

    def local(block: jax.Array) -> tuple[jax.Array, jax.Array]:
        device = lax.axis_index(AXIS)
        column = jnp.arange(depth, dtype=jnp.int32)
        real = column < jnp.asarray(rows, jnp.int32)[device]
        keys = jnp.where(real, order_keys(block), jnp.int32(_NO_KEY))
        if keep == 1:  # XLA's argmax takes the first of equal keys, far faster than top_k
            picked = jnp.argmax(keys, axis=-1, keepdims=True).astype(jnp.int32)
        else:
            _, picked = lax.top_k(keys, keep)
        values = jnp.take_along_axis(block, picked, axis=-1)
        ids = jnp.where(
            jnp.take(real, picked), picked + jnp.asarray(offsets, jnp.int32)[device], _NO_ID
        )
        every_value = _side_by_side(lax.all_gather(values, AXIS))
        every_id = _side_by_side(lax.all_gather(ids, AXIS))
        every_key = jnp.where(every_id == _NO_ID, jnp.int32(_NO_KEY), order_keys(every_value))
        _, best_ids, best_values = lax.sort(
            (~every_key, every_id, every_value), dimension=-1, num_keys=2
        )
        return best_values[:, :k], best_ids[:, :k].astype(jnp.int64)

    def make() -> DeviceExchange:
        return DeviceExchange(ctx, node, local, lambda shape: shape[0] * keep * (itemsize + 4))

    exchange = exchange_of(ctx, node, make)
    shards = exchange.placed(shards)
    lead = next(s for s in shards if s is not None).shape[:-1]
    blocks = [padded(s, depth, 0) for s in shards]
    results = []
    for values, ids in exchange(blocks):
        results.append(None if values is None else values.reshape(*lead, k))
        results.append(None if ids is None else ids.reshape(*lead, k))
    return tuple(results)


def _side_by_side(gathered: jax.Array) -> jax.Array:
    """`(devices, tokens, c)` as `(tokens, devices * c)`, device 0's candidates first."""
    devices, tokens, count = gathered.shape
    return jnp.moveaxis(gathered, 0, 1).reshape(tokens, devices * count)  # no -1: 0 tokens
