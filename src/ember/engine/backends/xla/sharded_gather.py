"""XLA lowering of `sharded_gather`: devices exchange the rows they own, not masked partials.

Every caller holds the same ids, so the host works out per execute which positions each shard
owns. Then one jitted `shard_map` over the shards' devices runs: each device gathers its owned
rows (padded to a common count), `lax.all_gather` hands every device all of them, and each
device picks them into the ids' order (a second gather: XLA's scatter is far slower). A device
receives about the output once ((n - 1) / n of it), where an all-reduce of masked partials
moves 2 (n - 1) / n; rows are copied, never summed, so their bits are exact. Ids outside the
table raise on the host before anything runs ("error"), become zero rows ("zero") or the
nearest row ("clamp"). What a device receives lands in the previous exchange's buffer, donated
to XLA: a fresh one from 32 MiB up would be faulted in page by page on every execute.

With `reduce="scatter"` each device needs only its slice of the ids, so `lax.all_to_all` sends
each device just the rows of its slice (about 1 / n of the output, against (n - 1) / n for a
masked reduce-scatter).

At the first execute the shards become one array sharded over the devices, without a copy
(JAX aliases a placed shard of a memory-mapped table); only a short last shard is padded.
"""

from __future__ import annotations

import math
import threading

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ember.errors import out_of_range_ids, scatter_error
from ember.graph import Node
from ember.graph.ops.sharded_gather import SHARDED_GATHER

from .device_exchange import peer_loss_as_error
from .lowering import LoweringContext, lowers

__all__ = ["ShardedTable", "lower_sharded_gather"]

_AXIS = "shards"

_BUCKETS = 32
"""Row counts sent are padded up to a multiple of 1/this of their typical value: at most ~3 %
more rows exchanged, and a bounded number of compiled shapes per id count."""

_CREATING = threading.Lock()
"""Held while a model's first execute builds its table: threads running that execute at once
share one table (one compiled exchange, one count of bytes)."""


@lowers(SHARDED_GATHER)
def lower_sharded_gather(
    ctx: LoweringContext, node: Node, *inputs: jax.Array
) -> tuple[jax.Array, ...]:
    *shards, ids = inputs
    table = ctx.memo.get(id(node))
    if table is None:
        with _CREATING:
            table = ctx.memo.get(id(node))
            if table is None:
                table = ctx.memo[id(node)] = ShardedTable(ctx, node, shards)
    return table.lookup(np.asarray(ids))


class ShardedTable:
    """The shards as one array over a mesh of their devices, and the jitted exchange."""

    def __init__(self, ctx: LoweringContext, node: Node, shards: list[jax.Array]) -> None:
        self.devices = [ctx.device(t.device) for t in node.result_types]
        self.mesh = Mesh(np.array(self.devices), (_AXIS,))
        self.size, self.out_of_range = node.attrs["size"], node.attrs["out_of_range"]
        self.ends = np.cumsum(node.attrs["rows"])
        self.offsets = np.asarray(node.attrs["offsets"], np.int64)
        self.row_shape = tuple(int(d) for d in node.inputs[0].shape[1:])
        self.dtype = node.result_types[0].dtype.to_numpy()
        self.row_bytes = math.prod(self.row_shape) * self.dtype.itemsize
        self.exchanged_bytes = 0
        """Bytes all devices together received in the exchanges so far."""
        self._counting = threading.Lock()  # executes on several threads add to it at once
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
        self.scatter = node.attrs["reduce"] == "scatter"
        self._gather = jax.jit(self._gather_fn, donate_argnums=3, keep_unused=True)
        self._zeros = jax.jit(jnp.zeros, static_argnums=(0, 1), out_shardings=self._sharded)
        self._spare: jax.Array | None = None
        """The last all-gather's receive buffer, donated to the next one, which writes into its
        pages: a fresh buffer from 32 MiB up is new memory, faulted in page by page (8k faults,
        a third of a 33 MiB exchange's time). XLA may give its pages to the result instead,
        where the two are of one size."""
        self._spare_lock = threading.Lock()
        self._scatter = jax.jit(self._scatter_fn)

    @property
    def _sharded(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec(_AXIS))

    def lookup(self, ids: np.ndarray) -> tuple[jax.Array, ...]:
        flat = self._checked(ids)
        n = len(self.devices)
        owner = np.where(flat >= 0, np.searchsorted(self.ends, flat, side="right"), n)
        replicated = NamedSharding(self.mesh, PartitionSpec())
        if self.scatter:
            if ids.ndim == 0 or ids.shape[0] % n:
                raise ValueError(scatter_error(ids.shape, n))
            rows, source = self._scatter_plan(flat, owner)
            exchange, inputs = self._scatter, (rows, source)
            shape = (ids.shape[0] // n, *ids.shape[1:], *self.row_shape)
        else:
            rows, source = self._gather_plan(flat, owner)
            exchange = self._gather_into_spare
            inputs = (rows, _global(source.reshape(ids.shape), replicated))
            shape = (*ids.shape, *self.row_shape)
        with peer_loss_as_error("the row exchange"):
            total = exchange(_global(inputs[0], self._sharded), *inputs[1:], self.table)
            total = total.block_until_ready()
        by_device = {s.device: s.data.reshape(shape) for s in total.addressable_shards}
        return tuple(by_device.get(d) for d in self.devices)  # None: another process's

    def _gather_into_spare(self, rows: jax.Array, source: jax.Array, table: jax.Array):
        """The all-gather exchange, receiving into the last one's buffer where it fits."""
        n = len(self.devices)
        received_shape = (n * n * rows.shape[1], *self.row_shape)
        with self._spare_lock:  # a buffer is donated once: another thread gets a new one
            spare, self._spare = self._spare, None
        if spare is None or spare.shape != received_shape:
            spare = self._zeros(received_shape, self.dtype)
        total, received = self._gather(rows, source, table, spare)
        with self._spare_lock:
            self._spare = received
        return total

    def _gather_plan(self, flat: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every device's owned rows (padded to one count), and where each id's row sits in
        what the all-gather brings together (past the end: a zero row)."""
        n = len(self.devices)
        owned = [np.flatnonzero(owner == k) for k in range(n)]
        count = _padded(max(len(p) for p in owned), flat.size // n)
        rows = np.zeros((n, count), np.int32)
        source = np.full(flat.size, n * count, np.int32)
        for k, where in enumerate(owned):
            rows[k, : len(where)] = flat[where] - self.offsets[k]
            source[where] = k * count + np.arange(len(where), dtype=np.int32)
        self._count(n * (n - 1) * count * self.row_bytes)
        return rows, source

    def _scatter_plan(self, flat: np.ndarray, owner: np.ndarray) -> tuple:
        """For each device j, the rows it owns of each device k's slice of the ids (a chunk
        per k, padded to one count), and for each device k where each of its ids' rows sits
        in what the all-to-all brings it."""
        n = len(self.devices)
        part = flat.size // n
        dest = np.arange(flat.size) // part
        pairs = [[np.flatnonzero((owner == j) & (dest == k)) for k in range(n)] for j in range(n)]
        count = _padded(max(len(w) for row in pairs for w in row), part // n)
        rows = np.zeros((n, n * count), np.int32)
        source = np.full((n, part), n * count, np.int32)
        for j in range(n):
            for k, where in enumerate(pairs[j]):
                rows[j, k * count : k * count + len(where)] = flat[where] - self.offsets[j]
                source[k, where - k * part] = j * count + np.arange(len(where), dtype=np.int32)
        self._count(n * (n - 1) * count * self.row_bytes)
        return rows, _global(source, self._sharded)

    def _count(self, received: int) -> None:
        with self._counting:
            self.exchanged_bytes += received

    def _checked(self, ids: np.ndarray) -> np.ndarray:
        """The ids as int64, each in the table (clamped), or -1 where none owns it."""
        flat = ids.reshape(-1)
        if self.out_of_range == "clamp":
            top = min(self.size - 1, int(np.iinfo(flat.dtype).max))
            return np.clip(flat, 0, top).astype(np.int64)
        outside = out_of_range_ids(ids, self.size, self.out_of_range)
        if outside is None:
            return flat.astype(np.int64)
        return np.where(outside.reshape(-1), -1, flat).astype(np.int64)  # "zero": nobody owns -1

    def _gather_fn(self, rows, source, table, spare):
        """The rows in the ids' order on every device, and what each device received (which
        XLA writes into the donated `spare`)."""

        def local(rows, source, block, spare):
            mine = jnp.take(block, rows[0], axis=0)
            everyone = lax.all_gather(mine, _AXIS).reshape(-1, *self.row_shape)
            return jnp.take(everyone, source, axis=0, mode="fill", fill_value=0), everyone

        spec = PartitionSpec(_AXIS)
        return jax.shard_map(  # every device ends with the same rows: replicated, unchecked
            local,
            mesh=self.mesh,
            in_specs=(spec, PartitionSpec(), spec, spec),
            out_specs=(PartitionSpec(), spec),
            check_vma=False,
        )(rows, source, table, spare)

    def _scatter_fn(self, rows, source, table):
        def local(rows, source, block):
            chunks = jnp.take(block, rows[0], axis=0)  # chunk k: the rows device k needs
            received = lax.all_to_all(chunks, _AXIS, 0, 0, tiled=True)  # chunk j: from j
            return jnp.take(received, source[0], axis=0, mode="fill", fill_value=0)

        spec = PartitionSpec(_AXIS)
        return jax.shard_map(local, mesh=self.mesh, in_specs=(spec, spec, spec), out_specs=spec)(
            rows, source, table
        )


def _padded(count: int, typical: int) -> int:
    """`count` rounded up to a multiple of 1/_BUCKETS of `typical`, and at least 1."""
    quantum = max(1, -(-typical // _BUCKETS))
    return max(1, -(-count // quantum) * quantum)


def _global(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A host array (the same in every process) as a global array laid out by `sharding`."""
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])
