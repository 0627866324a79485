"""How the XLA backend lowers ops: each op file registers one lowering against the op's symbol
with `@lowers(SYMBOL)`. A lowering maps a node and its input arrays to `jax.numpy` results
while its segment is traced by `jax.jit` (or, for work on weights alone, once at load)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ember.engine.debug_print import DebugPrintOptions
from ember.errors import OutOfRangeError, out_of_range_error
from ember.graph import DeviceRef, Node, Op

__all__ = ["LOWERINGS", "Check", "Lowering", "LoweringContext", "Requirement", "lowers"]

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


_MAX_RANK = 8
"""Ids of up to this rank have their shape packed into a check's row."""


@dataclass(frozen=True)
class Check:
    """An out-of-range test computed inside the jitted function and raised on the host.

    `row` packs into one int64 vector what the error needs: the flat position of the first bad
    id (-1 when there is none), that id's bits, the size the ids index, their rank and shape;
    `out_of_range`, `axis` and the ids' `dtype` are constants of the node.
    """

    row: jax.Array
    out_of_range: str
    axis: int
    dtype: np.dtype

    def error(self, row: np.ndarray) -> OutOfRangeError:
        position, bits, size, rank = (int(v) for v in row[:4])
        bits = np.array(bits, np.int64)
        bad_id = bits.view(np.uint64) if self.dtype == np.uint64 else bits.astype(self.dtype)
        shape = tuple(int(d) for d in row[4 : 4 + rank])
        return out_of_range_error(
            shape, position, bad_id.item(), size, self.out_of_range, self.axis
        )


@dataclass(frozen=True)
class Requirement:
    """A condition on values known only at execution, computed inside the jitted function and
    raised on the host when it fails: `row` (a `Check`'s length) holds 0 when it failed, else
    -1, then the integers `make` formats into the error."""

    row: jax.Array
    facts: int
    make: Callable[[list[int]], Exception]

    def error(self, row: np.ndarray) -> Exception:
        return self.make([int(v) for v in row[1 : 1 + self.facts]])


@dataclass
class LoweringContext:
    """What a lowering may ask: the size of each symbolic dim, the JAX device of a graph
    device, where to record out-of-range checks, and (across devices) its memo."""

    bindings: dict[str, int]
    device: Callable[[DeviceRef], jax.Device]
    checks: list[Check | Requirement] = field(default_factory=list)
    memo: dict[Any, Any] = field(default_factory=dict)
    """What a lowering of a cross-device op keeps from one execute to the next."""
    checked_on_host: frozenset[int] = frozenset()
    """Nodes whose ids the executable checks on the host before the segment runs."""
    debug_print: DebugPrintOptions | None = None
    """The session's `ops.print` options (read when a print runs), or None."""

    def check(
        self,
        node: Node,
        ids: jax.Array,
        bad: jax.Array,
        size: int,
        out_of_range: str,
        axis: int,
    ) -> None:
        """Record that the ids where `bad` holds must raise once the segment has run; every
        checking node records exactly one check, whatever the shapes, unless its ids are
        checked on the host.

        Raises:
            ValueError: ids of a rank above `_MAX_RANK`.
        """
        if id(node) in self.checked_on_host:
            return
        if ids.ndim > _MAX_RANK:
            raise ValueError(f"ids of rank {ids.ndim}: the xla backend checks up to {_MAX_RANK}")
        wide = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32  # 64-bit ids imply x64
        flat, ids_flat = bad.reshape(-1), ids.reshape(-1)
        if flat.size == 0:
            position, bad_id = jnp.asarray(-1, wide), jnp.zeros((), wide)
        else:
            at = jnp.argmax(flat)
            position = jnp.where(flat[at], at, -1).astype(wide)
            bad_id = ids_flat[at]
            if bad_id.dtype == jnp.uint64:
                bad_id = lax.bitcast_convert_type(bad_id, jnp.int64)
            bad_id = bad_id.astype(wide)
        shape = [*ids.shape] + [0] * (_MAX_RANK - ids.ndim)
        constants = jnp.asarray([int(size), ids.ndim, *shape], wide)
        row = jnp.concatenate([jnp.stack([position, bad_id]), constants])
        self.checks.append(Check(row, out_of_range, axis, np.dtype(ids.dtype)))

    ROW_FACTS = 3 + _MAX_RANK
    """How many integers a `require` may carry."""

    def require(
        self, holds: jax.Array, facts: list[Any], make: Callable[[list[int]], Exception]
    ) -> None:
        """Raise `make(facts)` after the segment runs unless `holds`; `facts` are at most
        `ROW_FACTS` integers, each within the row's integer type."""
        wide = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
        row = [jnp.where(holds, -1, 0).astype(wide), *(jnp.asarray(f).astype(wide) for f in facts)]
        row += [jnp.zeros((), wide)] * (4 + _MAX_RANK - len(row))
        self.checks.append(Requirement(jnp.stack(row), len(facts), make))
