"""XLA lowering of `allgather`: each input flattened to `(rows, size along the axis)` and padded
to the longest on its own device, `lax.all_gather` hands every device every block, and each
device keeps every block's own part, side by side."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ember.graph import Node
from ember.graph.ops.allgather import ALLGATHER

from .device_exchange import AXIS, DeviceExchange, exchange_of, padded
from .lowering import LoweringContext, lowers

__all__ = ["lower_allgather"]


@lowers(ALLGATHER)
def lower_allgather(ctx: LoweringContext, node: Node, *inputs: jax.Array) -> tuple:
    axis, sizes = node.attrs["axis"], node.attrs["sizes"]
    depth = max(max(sizes), 1)
    itemsize = np.dtype(node.inputs[0].dtype.to_numpy()).itemsize

    def local(block: jax.Array) -> tuple[jax.Array]:
        every = lax.all_gather(block, AXIS)
        return (jnp.concatenate([every[d, :, :size] for d, size in enumerate(sizes)], axis=-1),)

    def make() -> DeviceExchange:
        return DeviceExchange(ctx, node, local, lambda shape: math.prod(shape) * itemsize)

    exchange = exchange_of(ctx, node, make)
    inputs = exchange.placed(inputs)
    shape = list(next(x for x in inputs if x is not None).shape)
    shape[axis] = sum(sizes)
    blocks = [None if x is None else padded(jnp.moveaxis(x, axis, -1), depth, 0) for x in inputs]
    results = []
    for (whole,) in exchange(blocks):
        if whole is not None:
            moved = [*shape[:axis], *shape[axis + 1 :], shape[axis]]
            whole = jnp.moveaxis(whole.reshape(moved), -1, axis)
        results.append(whole)
    return tuple(results)
