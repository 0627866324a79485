"""XLA lowering of `reducescatter_sum`: each device's value laid out as `n` runs along the axis
(moved first), each padded to the longest run, so that XLA's `psum_scatter` sums them and
leaves device `k` the `k`-th; each device then drops its run's padding."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ember.graph import Node
from ember.graph.ops.reducescatter import REDUCESCATTER_SUM, run_bounds

from .device_exchange import AXIS, DeviceExchange, exchange_of
from .lowering import LoweringContext, lowers

__all__ = ["lower_reducescatter_sum"]


@lowers(REDUCESCATTER_SUM)
def lower_reducescatter_sum(ctx: LoweringContext, node: Node, *inputs: jax.Array) -> tuple:
    axis, n = node.attrs["axis"], len(node.inputs)
    itemsize = np.dtype(node.inputs[0].dtype.to_numpy()).itemsize

    def local(block: jax.Array) -> tuple[jax.Array]:
        return (lax.psum_scatter(block, AXIS, scatter_dimension=0, tiled=True),)

    def make() -> DeviceExchange:
        received = lambda shape: math.prod(shape) // n * itemsize  # noqa: E731 - one run
        return DeviceExchange(ctx, node, local, received, per_device=True)

    exchange = exchange_of(ctx, node, make)
    inputs = exchange.placed(inputs)
    size = next(x for x in inputs if x is not None).shape[axis]
    runs = tuple(run_bounds(size, n))
    if next(x for x in inputs if x is not None).size == 0:  # nothing to add (XLA refuses)
        return tuple(
            None if x is None else x[(slice(None),) * axis + (slice(*run),)]
            for x, run in zip(inputs, runs, strict=True)
        )
    blocks = [None if x is None else _runs_padded(x, axis, runs) for x in inputs]
    results = []
    for (run, *_), (start, stop) in zip(exchange(blocks), runs, strict=True):
        results.append(None if run is None else jnp.moveaxis(run[: stop - start], 0, axis))
    return tuple(results)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _runs_padded(x: jax.Array, axis: int, runs: tuple[tuple[int, int], ...]) -> jax.Array:
    """`x` with `axis` first, as `len(runs)` runs of the longest run's length (zeros after
    each shorter one), end to end."""
    moved = jnp.moveaxis(x, axis, 0)
    longest = runs[0][1] - runs[0][0]
    rest = ((0, 0),) * (moved.ndim - 1)
    return jnp.concatenate(
        [jnp.pad(moved[a:b], ((0, longest - (b - a)), *rest)) for a, b in runs], axis=0
    )
