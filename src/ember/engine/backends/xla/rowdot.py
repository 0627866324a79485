"""Products whose every element is summed in one order, whatever rows a call covers: what
makes a vocabulary-sharded head's logits the unsharded head's, bit for bit.

XLA's CPU matrix products change how they group a dot product's terms with the matrices'
shapes (and with where a row falls in their tiles): a logit computed against a shard of the
table can differ in its last bits from the same logit computed against the whole table.
Products of one fixed shape do not, so:

- several tokens (or any, where the caller asks) take the table a block of `BATCH_BLOCK` rows
  at a time, one product per
  block in one `lax.map` (the last block overlaps the one before it rather than running past
  the table), and a table shorter than a block is padded to one;
- one token is a vector-matrix product over whole tiles of `TOKEN_TILE` rows, which streams
  the table at XLA's matrix-vector speed, and the rows past the last whole tile go through a
  tile padded with zeros.

Rows come from `read(start, count)`, so a quantized table is decoded a block at a time, in
the layout they are stored in (`row_axis`: a transpose inside the product would let XLA pick
another kernel for some blocks). The tests check the bits across shardings, token counts,
widths and formats.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["BATCH_BLOCK", "TOKEN_TILE", "rowdot"]

TOKEN_TILE = 64
"""Rows per tile for one token: a multiple of the tiles of XLA's vector-matrix product."""

BATCH_BLOCK = 512
"""Rows per block for several tokens: wide enough that each block's product runs near XLA's
matrix speed (measured: 1.4x its time at 64 tokens, 1.9x at 8)."""

Read = Callable[[jax.Array | int, int], jax.Array]
"""`read(start, count)`: float32 rows `[start, start + count)` of the table along `row_axis`
(`(count, width)` or `(width, count)`)."""


def rowdot(
    lhs: jax.Array, rows: int, read: Read, row_axis: int, *, blocks_only: bool = False
) -> jax.Array:
    """`lhs @ table.T` for float32 `lhs` `(tokens, width)` and a table of `rows` rows given by
    `read` along `row_axis`, each element's sum in an order that depends on the width and the
    tokens alone. `blocks_only`: one token too reads the table a block at a time (a quantized
    table, decoded as it is read, is then never whole). A NaN product is the one quiet NaN:
    XLA's fused code may give its sign from either operand of an inf - inf, differently for
    the rows a shard holds."""
    products = _rowdot(lhs, rows, read, row_axis, blocks_only)
    return jnp.where(jnp.isnan(products), jnp.float32(jnp.nan), products)


def _rowdot(lhs: jax.Array, rows: int, read: Read, row_axis: int, blocks_only: bool) -> jax.Array:
    product = functools.partial(_product, width_axis=1 - row_axis)
    padded = functools.partial(_padded, row_axis=row_axis)
    tokens = lhs.shape[0]
    if rows == 0 or tokens == 0:
        return jnp.zeros((tokens, rows), jnp.float32)
    if tokens == 1 and not blocks_only:
        return _one_token(lhs, rows, read, product, padded)
    if rows <= BATCH_BLOCK:
        return product(lhs, padded(read(0, rows), BATCH_BLOCK))[:, :rows]
    starts = list(range(0, rows - BATCH_BLOCK + 1, BATCH_BLOCK))
    covered = starts[-1] + BATCH_BLOCK
    if covered < rows:
        starts.append(rows - BATCH_BLOCK)  # the last block overlaps: a product of one shape
    per_block = lax.map(
        lambda start: product(lhs, read(start, BATCH_BLOCK)), jnp.asarray(starts, jnp.int32)
    )
    whole = jnp.moveaxis(per_block[: covered // BATCH_BLOCK], 0, 1).reshape(tokens, covered)
    if covered == rows:
        return whole
    return jnp.concatenate([whole, per_block[-1][:, BATCH_BLOCK - (rows - covered) :]], axis=1)


def _one_token(lhs: jax.Array, rows: int, read: Read, product, padded) -> jax.Array:
    whole = rows // TOKEN_TILE * TOKEN_TILE
    parts = [product(lhs, read(0, whole))] if whole else []
    if whole < rows:
        tail = padded(read(whole, rows - whole), TOKEN_TILE)
        parts.append(product(lhs, tail)[:, : rows - whole])
    return jnp.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def _padded(rows: jax.Array, count: int, row_axis: int) -> jax.Array:
    pad = [(0, 0), (0, 0)]
    pad[row_axis] = (0, count - rows.shape[row_axis])
    return jnp.pad(rows, pad)


def _product(lhs: jax.Array, rows: jax.Array, width_axis: int) -> jax.Array:
    contract = (((1,), (width_axis,)), ((), ()))
    return lax.dot_general(lhs, rows, contract, precision=lax.Precision.HIGHEST)
