"""XLA lowerings of the ops that cross devices. They run between jitted segments, on what the
segments made (placed) or the caller gave (host arrays, for a graph input read straight): a
transfer or a broadcast is `jax.device_put`, and an all-reduce is XLA's own collective,
`lax.psum` under `shard_map` over a mesh of the devices involved."""

from __future__ import annotations

import functools

import jax
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ember.graph import Node
from ember.graph.ops.allreduce import ALLREDUCE_SUM
from ember.graph.ops.distributed_broadcast import BROADCAST
from ember.graph.ops.transfer import TRANSFER_TO

from .lowering import LoweringContext, lowers

__all__ = ["lower_allreduce_sum", "lower_broadcast", "lower_transfer"]

_AXIS = "devices"


@lowers(TRANSFER_TO)
def lower_transfer(ctx: LoweringContext, node: Node, x: jax.Array) -> jax.Array:
    return jax.device_put(x, ctx.device(node.attrs["device"]))


@lowers(BROADCAST)
def lower_broadcast(ctx: LoweringContext, node: Node, x: jax.Array) -> tuple[jax.Array, ...]:
    return tuple(jax.device_put(x, ctx.device(t.device)) for t in node.result_types)


@lowers(ALLREDUCE_SUM)
def lower_allreduce_sum(
    ctx: LoweringContext, node: Node, *partials: jax.Array
) -> tuple[jax.Array, ...]:
    devices = tuple(ctx.device(t.device) for t in node.result_types)
    if len(devices) == 1:
        return (partials[0],)
    shape = partials[0].shape
    mesh = Mesh(np.array(devices), (_AXIS,))
    stacked = jax.make_array_from_single_device_arrays(
        (len(devices), *shape),
        NamedSharding(mesh, PartitionSpec(_AXIS)),
        [jax.device_put(p, d).reshape(1, *shape) for p, d in zip(partials, devices, strict=True)],
    )  # a graph input comes as the caller gave it: placed here (a no-op for placed arrays)
    total = _psum(mesh)(stacked)
    by_device = {shard.device: shard.data for shard in total.addressable_shards}
    return tuple(by_device[d] for d in devices)


@functools.cache
def _psum(mesh: Mesh):
    """One jitted all-reduce per set of devices: each device's block summed over the mesh and
    left, whole, on every device."""

    def local(block: jax.Array) -> jax.Array:
        return lax.psum(block[0], _AXIS)

    spec = PartitionSpec(_AXIS)
    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=spec, out_specs=PartitionSpec()))
