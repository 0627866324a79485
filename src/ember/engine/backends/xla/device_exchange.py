"""What the XLA lowerings of `sharded_top_k`, `sharded_logsumexp`, `allgather` and
`reducescatter_sum` share: one
block per device (padded to a common shape on its own device), made one array over a mesh of
the devices without a copy, one jitted `shard_map` that reduces and exchanges, and a count of
the bytes the devices received, as `ShardedTable.exchanged_bytes` counts a lookup's.

In a job of several processes each process passes only its own devices' blocks (the others'
are None) and runs the same jitted exchange; results on another process's devices are None.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from collections.abc import Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ember.errors import PeerLostError
from ember.graph import Node

from .lowering import LoweringContext

__all__ = ["AXIS", "DeviceExchange", "exchange_of", "padded", "peer_loss_as_error"]

AXIS = "devices"


@contextlib.contextmanager
def peer_loss_as_error(during: str) -> Iterator[None]:
    """A collective that failed because a process of the job stopped answering (gloo's
    error, seen while blocking on the result) raised as `PeerLostError`; other errors as
    they are. jaxlib reports gloo's failure as a `JaxRuntimeError` while a job's collectives
    are being set up, and later (a connection reset, a timed-out read) as a plain
    `ValueError`: both are caught."""
    try:
        yield
    except (jax.errors.JaxRuntimeError, ValueError) as error:
        if "gloo" not in str(error).lower():
            raise
        raise PeerLostError(
            f"a process of this job stopped answering during {during}: {error}"
        ) from None


_CREATING = threading.Lock()
"""Held while a model's first execute builds a node's exchange: threads running that execute
at once share one (one compiled function, one count of bytes)."""


def exchange_of(ctx: LoweringContext, node: Node, make: Callable[[], DeviceExchange]):
    """The node's exchange, kept in the executable's memo from one execute to the next."""
    exchange = ctx.memo.get(id(node))
    if exchange is None:
        with _CREATING:
            exchange = ctx.memo.get(id(node))
            if exchange is None:
                exchange = ctx.memo[id(node)] = make()
    return exchange


class DeviceExchange:
    """`local(block)` run on every device's block under `shard_map`, its result left whole on
    every device (or, `per_device`, each device's own: a reduce-scatter's runs);
    `received(block_shape)` says how many bytes one device receives from each other device for
    a block of that shape."""

    def __init__(
        self,
        ctx: LoweringContext,
        node: Node,
        local: Callable[[jax.Array], tuple[jax.Array, ...]],
        received: Callable[[tuple[int, ...]], int],
        per_device: bool = False,
    ) -> None:
        self.devices = [ctx.device(v.device) for v in node.inputs]
        self.mesh = Mesh(np.array(self.devices), (AXIS,))
        self._received = received
        self.exchanged_bytes = 0
        """Bytes all devices together received in the exchanges so far."""
        self._counting = threading.Lock()  # executes on several threads add to it at once
        self._run = jax.jit(
            jax.shard_map(  # every device ends with the same result: replicated, unchecked
                lambda block: local(block[0]),
                mesh=self.mesh,
                in_specs=PartitionSpec(AXIS),
                out_specs=PartitionSpec(AXIS) if per_device else PartitionSpec(),
                check_vma=False,
            )
        )

    def placed(self, inputs: Sequence[object | None]) -> list[jax.Array | None]:
        """Each input on its device (a graph input arrives as a host array); None for another
        process's devices."""
        here = jax.process_index()
        return [
            jax.device_put(x, d) if x is not None and d.process_index == here else None
            for x, d in zip(inputs, self.devices, strict=True)
        ]

    def __call__(self, blocks: Sequence[jax.Array | None]) -> list[tuple[jax.Array | None, ...]]:
        """Each device's results, from its block (all of one shape; None: another process's)."""
        mine = [b for b in blocks if b is not None]
        shape = tuple(mine[0].shape)
        stacked = jax.make_array_from_single_device_arrays(
            (len(self.devices), *shape),
            NamedSharding(self.mesh, PartitionSpec(AXIS)),
            [b[None] for b in mine],
        )
        with peer_loss_as_error("an exchange"):
            results = jax.block_until_ready(self._run(stacked))
        n = len(self.devices)
        with self._counting:
            self.exchanged_bytes += n * (n - 1) * self._received(shape)
        by_device = [{s.device: s.data for s in result.addressable_shards} for result in results]
        return [tuple(found.get(d) for found in by_device) for d in self.devices]


def padded(block: jax.Array | None, depth: int, fill: float) -> jax.Array | None:
    """`block` as `(tokens, depth)` on its own device, its columns past its own filled with
    `fill` (a copy only where it is short)."""
    if block is None:
        return None
    flat = block.reshape(math.prod(block.shape[:-1]), block.shape[-1])
    if flat.shape[1] == depth:
        return flat
    return _pad(flat, depth, fill)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _pad(block: jax.Array, depth: int, fill: float) -> jax.Array:
    return jnp.pad(block, ((0, 0), (0, depth - block.shape[1])), constant_values=fill)
