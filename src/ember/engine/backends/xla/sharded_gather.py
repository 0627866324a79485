"""XLA lowering of `sharded_gather`: devices exchange the rows they own, not masked partials.

Every caller holds the same ids, so the host works out per execute which positions each shard
owns. Then one jitted `shard_map` over the shards' devices runs: each device gathers its owned
rows (padded to a common count), `lax.all_gather` hands every device all of them, and each
device picks them into the ids' order (a second gather: XLA's scatter is far slower). A device
receives about the output once ((n - 1) / n of it), where an all-reduce of masked partials
moves 2 (n - 1) / n; rows are copied, never summed, so their bits are exact. Ids outside the
table raise on the host before anything runs ("error"), become zero rows ("zero") or the
nearest row ("clamp").

At the first execute the shards become one array sharded over the devices, without a copy
(JAX aliases a placed shard of a memory-mapped table); only a short last shard is padded.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ember.errors import PeerLostError, out_of_range_error
from ember.graph import Node
from ember.graph.ops.sharded_gather import SHARDED_GATHER

from .lowering import LoweringContext, lowers

__all__ = ["ShardedTable", "lower_sharded_gather"]

_AXIS = "shards"

_BUCKETS = 32
"""Owned-row counts are padded up to a multiple of ids / (devices * this): at most ~3 % more
rows exchanged, and a bounded number of compiled shapes per id count."""


@lowers(SHARDED_GATHER)
def lower_sharded_gather(
    ctx: LoweringContext, node: Node, *inputs: jax.Array
) -> tuple[jax.Array, ...]:
    *shards, ids = inputs
    table = ctx.memo.get(id(node))
    if table is None:
        table = ctx.memo[id(node)] = ShardedTable(ctx, node, shards)
    return table.lookup(np.asarray(ids))


class ShardedTable:
    """The shards as one array over a mesh of their devices, and the jitted exchange."""

    def __init__(self, ctx: LoweringContext, node: Node, shards: list[jax.Array]) -> None:
        self.devices = [ctx.device(t.device) for t in node.result_types]
        self.mesh = Mesh(np.array(self.devices), (_AXIS,))
        self.size, self.policy = node.attrs["size"], node.attrs["out_of_range"]
        self.ends = np.cumsum(node.attrs["rows"])
        self.offsets = np.asarray(node.attrs["offsets"], np.int64)
        self.row_shape = tuple(int(d) for d in node.inputs[0].shape[1:])
        self.dtype = node.result_types[0].dtype.to_numpy()
        self.row_bytes = math.prod(self.row_shape) * self.dtype.itemsize
        self.exchanged_bytes = 0
        """Bytes all devices together received in the exchanges so far."""
        depth = max(max(node.attrs["rows"]), 1)
        blocks = []
        for shard, device in zip(shards, self.devices, strict=True):
            if shard is None:  # another process's device: that process provides its block
                continue
            if shard.shape[0] < depth:  # a short last shard: padded, a copy of its rows
                with jax.default_device(device):
                    pad = jnp.zeros((depth - shard.shape[0], *self.row_shape), self.dtype)
                    shard = jnp.concatenate([jnp.asarray(shard), pad])
            blocks.append(shard)  # a full shard as placed: a memory-mapped one is not copied
        self.table = jax.make_array_from_single_device_arrays(
            (len(self.devices) * depth, *self.row_shape), self._sharded, blocks
        )
        self._exchange = jax.jit(self._exchange_fn)

    @property
    def _sharded(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec(_AXIS))

    def lookup(self, ids: np.ndarray) -> tuple[jax.Array, ...]:
        flat = self._checked(ids)
        n = len(self.devices)
        owner = np.where(flat >= 0, np.searchsorted(self.ends, flat, side="right"), n)
        owned = [np.flatnonzero(owner == k) for k in range(n)]
        quantum = max(1, -(-flat.size // (n * _BUCKETS)))
        count = max(1, -(-max(len(p) for p in owned) // quantum) * quantum)
        rows = np.zeros((n, count), np.int32)
        source = np.full(flat.size, n * count, np.int32)  # past the rows: a zero row
        for k, where in enumerate(owned):
            rows[k, : len(where)] = flat[where] - self.offsets[k]
            source[where] = k * count + np.arange(len(where), dtype=np.int32)
        self.exchanged_bytes += n * (n - 1) * count * self.row_bytes
        try:
            total = self._exchange(
                _global(rows, self._sharded),
                _global(source, NamedSharding(self.mesh, PartitionSpec())),
                self.table,
            ).block_until_ready()
        except jax.errors.JaxRuntimeError as error:
            if "gloo" not in str(error).lower():
                raise
            raise PeerLostError(
                f"a process of this job stopped answering during the row exchange: {error}"
            ) from None
        by_device = {
            s.device: s.data.reshape(*ids.shape, *self.row_shape) for s in total.addressable_shards
        }
        return tuple(by_device.get(d) for d in self.devices)  # None: another process's

    def _checked(self, ids: np.ndarray) -> np.ndarray:
        """The ids as int64, each in the table (clamped), or -1 where none owns it."""
        flat = ids.reshape(-1)
        top = min(self.size - 1, int(np.iinfo(flat.dtype).max))
        if self.policy == "clamp":
            return np.clip(flat, 0, top).astype(np.int64)
        inside = flat <= top if flat.dtype.kind == "u" else (flat >= 0) & (flat <= top)
        if inside.all():
            return flat.astype(np.int64)
        at = int(np.argmin(inside))
        if self.policy == "error":
            raise out_of_range_error(ids.shape, at, flat[at].item(), self.size, "error")
        return np.where(inside, flat, -1).astype(np.int64)  # "zero": nobody owns -1

    def _exchange_fn(self, rows, source, table):
        def local(rows, source, block):
            mine = jnp.take(block, rows[0], axis=0)
            everyone = lax.all_gather(mine, _AXIS).reshape(-1, *self.row_shape)
            return jnp.take(everyone, source, axis=0, mode="fill", fill_value=0)

        spec = PartitionSpec(_AXIS)
        return jax.shard_map(  # every device ends with the same rows: replicated, unchecked
            local,
            mesh=self.mesh,
            in_specs=(spec, PartitionSpec(), spec),
            out_specs=PartitionSpec(),
            check_vma=False,
        )(rows, source, table)


def _global(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A host array (the same in every process) as a global array laid out by `sharding`."""
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])
