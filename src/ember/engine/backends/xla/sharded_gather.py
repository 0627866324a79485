"""XLA lowering of `sharded_gather`: one jitted `shard_map` over the shards' devices. Each
device looks up the ids its shard owns (zero rows elsewhere) and `lax.psum` gives every device
the whole result; ids outside the table are flagged inside the same function and raised on the
host. The shards are stacked into one array sharded over the devices at the first execute.

The partials are summed as unsigned integers of their width, zero where a device owns no row,
so every row keeps its exact bits. Each device still sends a full-size partial: a masked
all-reduce."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ember.errors import out_of_range_error
from ember.graph import Node
from ember.graph.ops.sharded_gather import SHARDED_GATHER

from .gather import clamped, valid_ids
from .lowering import LoweringContext, lowers

__all__ = ["lower_sharded_gather"]

_AXIS = "shards"


@lowers(SHARDED_GATHER)
def lower_sharded_gather(
    ctx: LoweringContext, node: Node, *inputs: jax.Array
) -> tuple[jax.Array, ...]:
    *shards, ids = inputs
    table = ctx.memo.get(id(node))
    if table is None:
        table = ctx.memo[id(node)] = _ShardedTable(ctx, node, shards)
    return table.lookup(ids)


class _ShardedTable:
    """The shards as one array over a mesh of their devices, and the jitted lookup over it."""

    def __init__(self, ctx: LoweringContext, node: Node, shards: list[jax.Array]) -> None:
        self.devices = [ctx.device(t.device) for t in node.result_types]
        self.mesh = Mesh(np.array(self.devices), (_AXIS,))
        self.size, self.policy = node.attrs["size"], node.attrs["out_of_range"]
        rows = node.attrs["rows"]
        depth = max(rows)
        blocks = []
        for shard, device in zip(shards, self.devices, strict=True):
            with jax.default_device(device):
                pad = jnp.zeros((depth - shard.shape[0], *shard.shape[1:]), shard.dtype)
                blocks.append(jnp.concatenate([jnp.asarray(shard), pad])[None])
        self.table = jax.make_array_from_single_device_arrays(
            (len(blocks), *blocks[0].shape[1:]),
            NamedSharding(self.mesh, PartitionSpec(_AXIS)),
            blocks,
        )
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        offsets = np.asarray(node.attrs["offsets"], np.int64)
        counts = np.asarray(rows, np.int64)

        def local(ids: jax.Array, block: jax.Array) -> jax.Array:
            k = lax.axis_index(_AXIS)
            index = ids.astype(jnp.int64) - jnp.asarray(offsets)[k]
            owned = (index >= 0) & (index < jnp.asarray(counts)[k])
            picked = jnp.take(block[0], jnp.where(owned, index, 0), axis=0, mode="clip")
            mask = owned.reshape(owned.shape + (1,) * (picked.ndim - owned.ndim))
            bits = _as_bits(picked)
            total = lax.psum(jnp.where(mask, bits, jnp.zeros((), bits.dtype)), _AXIS)
            return _from_bits(total, picked.dtype)

        spread = jax.shard_map(
            local,
            mesh=self.mesh,
            in_specs=(PartitionSpec(), PartitionSpec(_AXIS)),
            out_specs=PartitionSpec(),
        )

        def lookup(ids: jax.Array, table: jax.Array) -> tuple:
            if self.policy == "clamp":
                return spread(clamped(ids, self.size), table), None, None
            valid = valid_ids(ids, self.size, allow_negative=False)
            total = spread(ids, table)
            bad = ~valid.reshape(-1)
            if bad.size == 0:
                return total, None, None
            at = jnp.argmax(bad)
            return total, jnp.where(bad[at], at, -1), ids.reshape(-1)[at]

        self._lookup = jax.jit(lookup)

    def lookup(self, ids: jax.Array) -> tuple[jax.Array, ...]:
        ids = jax.device_put(ids, self.replicated)
        total, position, bad_id = self._lookup(ids, self.table)
        if position is not None and self.policy == "error" and int(position) >= 0:
            raise out_of_range_error(
                tuple(ids.shape), int(position), np.asarray(bad_id).item(), self.size, "error"
            )
        by_device = {shard.device: shard.data for shard in total.addressable_shards}
        return tuple(by_device[d] for d in self.devices)


def _as_bits(values: jax.Array) -> jax.Array:
    """Values as unsigned integers of their width: summed with zeros, the bits of the one
    owned row come through exactly (a -0.0 stays -0.0, a NaN keeps its payload)."""
    if values.dtype == jnp.bool_:
        return values.astype(jnp.uint8)
    bits = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint64}[values.dtype.itemsize]
    return lax.bitcast_convert_type(values, bits)


def _from_bits(bits: jax.Array, dtype: np.dtype) -> jax.Array:
    if dtype == jnp.bool_:
        return bits.astype(jnp.bool_)
    return bits if bits.dtype == dtype else lax.bitcast_convert_type(bits, dtype)
