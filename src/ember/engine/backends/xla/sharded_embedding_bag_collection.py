"""XLA lowering of `sharded_embedding_bag_collection`: the ids routed once on the host
(`bag_routes`; every process holds them all), then on each device one jitted function pools
its blocks' rows into its partials (segment sums, or segment maxima from -inf), and one jitted
`shard_map` all-gathers the partials and combines them, the whole result left on every device.

A device receives one partial vector per bag from each other device: `batch` rows of its
partials' width (padded to the widest device's), where moving the rows instead would bring it
every row another device holds of every value. `exchanged_bytes` counts the first;
`row_bytes` what a row exchange (`sharded_gather`'s) would have moved for the same values,
rows as the tables store them.

In a job of several processes each process pools only its own devices' blocks and runs the
same exchange; results on another process's devices are None.
"""

from __future__ import annotations

import functools
import threading

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ember.graph import Node
from ember.graph.ops.embedding_bag import check_weights_shape
from ember.graph.ops.sharded_embedding_bag_collection import SHARDED_EMBEDDING_BAG_COLLECTION

from ..bag_routes import SKIP, ZERO_ROW, PartialLayout, route_bags
from .decode import decode
from .device_exchange import AXIS, exchange_of, peer_loss_as_error
from .elementwise import divide_rounded_once
from .lowering import LoweringContext, lowers
from .segment_maximum import maximum, segment_maximum

__all__ = ["PartialExchange", "lower_sharded_embedding_bag_collection"]


@lowers(SHARDED_EMBEDDING_BAG_COLLECTION)
def lower_sharded_embedding_bag_collection(
    ctx: LoweringContext, node: Node, *inputs: jax.Array
) -> tuple[jax.Array | None, ...]:
    exchange = exchange_of(ctx, node, lambda: PartialExchange(ctx, node))
    count = len(node.attrs["shards"])
    values, weights = np.asarray(inputs[count]), None
    if node.attrs["has_weights"]:
        weights = np.asarray(inputs[-1])
        check_weights_shape(SHARDED_EMBEDDING_BAG_COLLECTION.name, weights.shape, values.shape)
        weights = weights.reshape(-1).astype(np.float32)
    return exchange(inputs[:count], values, np.asarray(inputs[count + 1]), weights)


class PartialExchange:
    """The node's per-device pooling functions, its exchange, and its counts of bytes."""

    def __init__(self, ctx: LoweringContext, node: Node) -> None:
        self.attrs = attrs = node.attrs
        self.devices = [ctx.device(t.device) for t in node.result_types]
        self.mesh = Mesh(np.array(self.devices), (AXIS,))
        self.layout = PartialLayout(attrs, len(self.devices))
        self.depth = max(max(self.layout.widths), 1)
        self.out_dtype = node.result_types[0].dtype.to_numpy()
        self.stored = [  # each block's row, as stored
            int(np.prod(v.shape[1:])) * v.dtype.size_in_bytes
            for v in node.inputs[: len(attrs["shards"])]
        ]
        self.exchanged_bytes = 0
        """Bytes all devices together received in the exchanges so far."""
        self.row_bytes = 0
        """Bytes a row exchange of the same values would have had them receive."""
        self._counting = threading.Lock()
        self._pools = [
            jax.jit(functools.partial(self._pool, k), static_argnums=3)
            for k in range(len(self.devices))
        ]
        self._combine = jax.jit(
            jax.shard_map(  # every device ends with the same result: replicated, unchecked
                self._gather_and_combine,
                mesh=self.mesh,
                in_specs=(PartitionSpec(AXIS), PartitionSpec()),
                out_specs=PartitionSpec(),
                check_vma=False,
            )
        )

    def __call__(
        self, blocks, values: np.ndarray, lengths: np.ndarray, weights: np.ndarray | None
    ) -> tuple:
        """Each device's result (None on another process's): `weights`, float32, one per
        value, or None."""
        n, here = len(self.devices), jax.process_index()
        routes = route_bags(self.attrs, values, lengths, n)
        batch = lengths.shape[1]
        bags = np.repeat(np.arange(routes.starts.size - 1, dtype=np.int32), np.diff(routes.starts))
        mine = []
        for k, device in enumerate(self.devices):
            if device.process_index != here:
                continue
            held = [jax.device_put(blocks[s], device) for s in self.layout.held[k]]
            ids = jax.device_put(routes.ids[k].astype(np.int32), device)
            scale = None if weights is None else jax.device_put(weights, device)
            with jax.default_device(device):
                mine.append(self._pools[k](held, ids, jax.device_put(bags, device), batch, scale))
        stacked = jax.make_array_from_single_device_arrays(
            (n, batch, self.depth), NamedSharding(self.mesh, PartitionSpec(AXIS)), mine
        )
        total = routes.total.astype(np.float32)
        replicated = jax.make_array_from_callback(
            total.shape, NamedSharding(self.mesh, PartitionSpec()), lambda index: total[index]
        )
        with peer_loss_as_error("an exchange"):
            result = jax.block_until_ready(self._combine(stacked, replicated))
        self._count(routes, batch)
        found = {s.device: s.data for s in result.addressable_shards}
        return tuple(found.get(d) for d in self.devices)

    def _count(self, routes, batch: int) -> None:
        """Add this execute's partials, and the rows a row exchange would have moved: each
        row a device pools goes to the n - 1 others."""
        n, rows = len(self.devices), 0
        for f, t in enumerate(self.attrs["features"]):
            low, high = routes.starts[f * batch], routes.starts[(f + 1) * batch]
            for s, (table, k, _, _) in enumerate(self.attrs["shards"]):
                if table == t:
                    read = routes.ids[k][low:high]
                    rows += int(((read != SKIP) & (read != ZERO_ROW)).sum()) * self.stored[s]
        with self._counting:
            self.exchanged_bytes += n * (n - 1) * batch * self.depth * 4
            self.row_bytes += (n - 1) * rows

    def _pool(self, k: int, blocks, ids, bags, batch: int, weights) -> jax.Array:
        """Device `k`'s `(1, batch, depth)` float32 partials: for each feature with a block
        here, the sums (or maxima, from -inf) of the rows it pools, each row times its weight
        where there are `weights`; `bags[i]` is value `i`'s bag, `feature * batch + sample`."""
        attrs, pieces = self.attrs, []
        feature, sample = bags // max(batch, 1), bags % max(batch, 1)
        for f, t in enumerate(attrs["features"]):
            if k not in self.layout.column[f]:
                continue
            block = next(
                b for s, b in zip(self.layout.held[k], blocks, strict=True)
                if attrs["shards"][s][0] == t
            )  # fmt: skip
            empty = -jnp.inf if attrs["modes"][t] == "max" else 0.0
            if ids.shape[0] == 0:  # no rows to take (decoders need one)
                pieces.append(jnp.full((batch, attrs["widths"][f]), empty, jnp.float32))
                continue
            ours = (ids != SKIP) & (feature == f)
            rows = jnp.take(block, jnp.clip(ids, 0, block.shape[0] - 1), axis=0)
            encoding = attrs["encodings"][t]
            rows = (decode(encoding.name, rows) if encoding else rows).astype(jnp.float32)
            if weights is not None:
                rows = rows * weights[:, None]
            fill = jnp.where(ids == ZERO_ROW, 0.0, empty)[:, None]  # a zero row counts in max
            terms = jnp.where((ours & (ids >= 0))[:, None], rows, fill)
            segments = jnp.where(ours, sample, batch)  # others fall past the end
            pool = segment_maximum if attrs["modes"][t] == "max" else jax.ops.segment_sum
            pieces.append(pool(terms, segments, num_segments=batch))
        partial = jnp.concatenate(pieces, axis=1) if pieces else jnp.zeros((batch, 0), jnp.float32)
        return jnp.pad(partial, ((0, 0), (0, self.depth - partial.shape[1])))[None]

    def _gather_and_combine(self, block: jax.Array, total: jax.Array) -> jax.Array:
        every = lax.all_gather(block[0], AXIS)  # (devices, batch, depth)
        attrs, pieces = self.attrs, []
        for f, t in enumerate(attrs["features"]):
            width, mode = attrs["widths"][f], attrs["modes"][t]
            parts = [every[k, :, c : c + width] for k, c in self.layout.column[f].items()]
            acc = parts[0]
            for part in parts[1:]:
                acc = maximum(acc, part) if mode == "max" else acc + part
            if mode == "max":
                acc = jnp.where(total[f][:, None] > 0, acc, 0.0)
            elif mode == "mean":
                quotient = divide_rounded_once(acc, total[f][:, None].astype(acc.dtype))
                acc = jnp.where(total[f][:, None] > 1, quotient, acc)
            pieces.append(acc)
        return jnp.concatenate(pieces, axis=1).astype(self.out_dtype)
