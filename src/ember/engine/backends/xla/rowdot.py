"""Products whose every element is summed in one order, whatever columns or tokens a call
covers: what makes a vocabulary-sharded head's logits the unsharded head's, bit for bit.

XLA's CPU matrix products change how they group a dot product's terms with the matrices'
shapes: a logit computed against a shard of the table's rows can differ in its last bits from
the same logit computed against the whole table. A vector-matrix product over whole tiles of
`TILE` columns sums each column in one order (the tests check this across shardings, batches
and widths), so each token is its own product, and the columns past the last whole tile go
through a tile padded with zeros (a copy of fewer than `TILE` columns, never of the table).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["TILE", "rowdot"]

TILE = 64
"""Columns per tile: a multiple of the tiles XLA's vector-matrix product works in."""


def rowdot(lhs: jax.Array, rhs: jax.Array) -> jax.Array:
    """`lhs @ rhs` for float32 `lhs` `(tokens, width)` and `rhs` `(width, columns)`, each
    element's sum in an order fixed by the width alone."""
    columns = rhs.shape[1]
    whole = columns // TILE * TILE
    if columns == 0 or lhs.shape[0] == 0:
        return jnp.zeros((lhs.shape[0], columns), jnp.float32)

    def one_token(vector: jax.Array) -> jax.Array:
        parts = []
        if whole:
            parts.append(_vector_matrix(vector, rhs[:, :whole]))
        if whole < columns:
            tail = jnp.pad(rhs[:, whole:], ((0, 0), (0, TILE - (columns - whole))))
            parts.append(_vector_matrix(vector, tail)[: columns - whole])
        return jnp.concatenate(parts) if len(parts) > 1 else parts[0]

    return lax.map(one_token, lhs)


def _vector_matrix(vector: jax.Array, matrix: jax.Array) -> jax.Array:
    return lax.dot_general(
        vector, matrix, (((0,), (0,)), ((), ())), precision=lax.Precision.HIGHEST
    )
