"""How the XLA backend lowers ops: each op file registers one lowering against the op's symbol
with `@lowers(SYMBOL)`. A lowering maps a node and its input arrays to `jax.numpy` results
while its segment is traced by `jax.jit` (or, for work on weights alone, once at load)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

from ember.graph import DeviceRef, Op

__all__ = ["LOWERINGS", "Check", "Lowering", "LoweringContext", "lowers"]

Lowering = Callable[..., Any]
"""`fn(ctx, node, *inputs)`: one array for a node of one result, else a tuple."""

LOWERINGS: dict[Op, Lowering] = {}


def lowers(*ops: Op) -> Callable[[Lowering], Lowering]:
    """Register the decorated function as the XLA lowering of `ops`."""

    def register(lowering: Lowering) -> Lowering:
        for op in ops:
            if op in LOWERINGS:
                raise ValueError(f"the xla backend already lowers {op}")
            LOWERINGS[op] = lowering
        return lowering

    return register


@dataclass(frozen=True)
class Check:
    """An out-of-range test computed inside the jitted function and raised on the host: the
    flat position of the first bad id (-1 when there is none), that id, the ids' shape and the
    size they index, as arrays; the policy and axis the message names, as constants."""

    position: jax.Array
    bad_id: jax.Array
    shape: jax.Array
    size: jax.Array
    policy: str
    axis: int


@dataclass
class LoweringContext:
    """What a lowering may ask: the size of each symbolic dim, the JAX device of a graph
    device, where to record out-of-range checks, and (across devices) its memo."""

    bindings: Mapping[str, int]
    device: Callable[[DeviceRef], jax.Device]
    checks: list[Check] = field(default_factory=list)
    memo: dict[Any, Any] = field(default_factory=dict)
    """What a lowering of a cross-device op keeps from one execute to the next."""

    def check(self, ids: jax.Array, bad: jax.Array, size: int, policy: str, axis: int) -> None:
        """Record that the ids where `bad` holds must raise once the segment has run; every
        checking node records exactly one check, whatever the shapes."""
        flat = bad.reshape(-1)
        ids_flat = ids.reshape(-1)
        if flat.size == 0:
            position, bad_id = jnp.asarray(-1, jnp.int64), jnp.zeros((), ids.dtype)
        else:
            at = jnp.argmax(flat)
            position, bad_id = jnp.where(flat[at], at, -1).astype(jnp.int64), ids_flat[at]
        shape = jnp.asarray(ids.shape, jnp.int64)
        self.checks.append(Check(position, bad_id, shape, jnp.asarray(size), policy, axis))
