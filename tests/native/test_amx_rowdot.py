"""The Q4_K integer head on AMX's tile unit: the vector kernel's logits bit for bit (it makes
the same integer sums and the same float32 work in the same order), for any number of tokens
from `TILE_MIN_TOKENS` and any rows; and the activations laid out as the unit reads them."""

from __future__ import annotations

import numpy as np
import pytest

from ember.engine.backends.native.kernels import int8_rowdot as vector
from ember.engine.backends.native.kernels.amx_rowdot import (
    AMX_FORMATS,
    TILE,
    TILE_MIN_TOKENS,
    q4_k_tile_logits,
    tile_activations,
    tiles_ready,
)
from ember.quant.samples import sample_table

needs_tiles = pytest.mark.skipif(
    not (AMX_FORMATS and tiles_ready()), reason="the CPU (or Linux) gives no AMX tile registers"
)


def states(tokens: int, width: int, seed: int) -> np.ndarray:
    hidden = np.random.default_rng(seed).standard_normal((tokens, width)).astype(np.float32)
    hidden[0, 3] = 40.0  # an outlier: its block's other values keep few levels
    hidden[1, :256] = 0.0  # an all-zero block
    return hidden


def activations(hidden: np.ndarray):
    """``(xq, dx, level_sums)``, as `int8_rowdot` hands them to the tile kernel."""
    xq, dx, sums = vector.quantize_activations(hidden)
    return xq, dx, vector.q4_k_level_sums(sums, dx)


def both(hidden: np.ndarray, table: np.ndarray, parallel: bool):
    tiles = np.full((hidden.shape[0], table.shape[0]), np.nan, np.float32)
    q4_k_tile_logits(*activations(hidden), table, tiles, parallel)
    vectors = np.full_like(tiles, np.nan)
    vector._vector_logits("q4_k", hidden, table, vectors, parallel)
    return tiles, vectors


@needs_tiles
@pytest.mark.parametrize("tokens", [TILE_MIN_TOKENS, TILE, TILE + 1, 3 * TILE + 5])
def test_tile_logits_are_the_vector_kernels_bits(tokens):
    table = sample_table("q4_k", 2 * 96 + 9, 1024, seed=tokens)  # three spans, short tiles
    hidden = states(tokens, 1024, seed=tokens)
    for parallel in (True, False):
        tiles, vectors = both(hidden, table, parallel)
        assert np.isfinite(tiles).all()
        np.testing.assert_array_equal(tiles.view(np.uint32), vectors.view(np.uint32))


@needs_tiles
def test_the_head_takes_the_tiles_from_their_token_count(monkeypatch):
    """Through `int8_rowdot`: huge tokens scaled down by a power of two first and back after,
    a NaN token's logits NaN, fewer tokens than `TILE_MIN_TOKENS` on the vector kernel."""
    calls = []

    def spy(*args):
        calls.append(args[0].shape[0])
        q4_k_tile_logits(*args)

    monkeypatch.setattr(vector, "q4_k_tile_logits", spy)
    table = sample_table("q4_k", 37, 512, seed=1)
    hidden = states(TILE, 512, seed=2)
    hidden[2] *= np.float32(2.0**110)
    hidden[5, 300] = np.nan
    for tokens in (TILE_MIN_TOKENS - 1, TILE):
        head = np.full((tokens, table.shape[0]), np.nan, np.float32)
        vector.int8_rowdot("q4_k", hidden[:tokens], table, head, parallel=False)
        shifts = vector._shifts(hidden[:tokens])  # as int8_rowdot scales tokens past 2**100
        assert shifts[2] > 0 and not np.delete(shifts, 2).any()
        want = np.full_like(head, np.nan)
        scaled = np.ldexp(hidden[:tokens], -shifts[:, None])
        vector._vector_logits("q4_k", scaled, table, want, False)
        want = np.ldexp(want, shifts[:, None])
        np.testing.assert_array_equal(head.view(np.uint32), want.view(np.uint32))
        nan_token = np.isnan(hidden[:tokens]).any(axis=1)
        assert np.isnan(head[nan_token]).all() and np.isfinite(head[~nan_token]).all()
    assert calls == [TILE]


def test_the_tile_kernel_refuses_a_process_without_tile_registers(monkeypatch):
    """Its instructions would kill the process (SIGILL) where Linux has not granted them."""
    from ember.engine.backends.native.kernels import amx_rowdot

    monkeypatch.setattr(amx_rowdot, "tiles_ready", lambda: False)
    hidden = states(TILE, 256, seed=4)
    table = sample_table("q4_k", 3, 256, seed=4)
    out = np.zeros((TILE, 3), np.float32)
    with pytest.raises(RuntimeError, match="no AMX tile registers"):
        q4_k_tile_logits(*activations(hidden), table, out, False)
    assert not out.any()


def test_activations_are_laid_out_as_the_tile_unit_reads_them():
    """``bx[b, j, tt]`` is ``B[k / 4][4 n + k % 4] = xq[16 tt + n, 256 b + 32 j + k]``, the
    padded tokens zero; the scales and level sums follow their tokens."""
    hidden = states(TILE + 3, 512, seed=3)
    xq, dx, _ = activations(hidden)
    bx, scale, level_sums = tile_activations(*activations(hidden))
    assert bx.shape == (2, 8, 2, 8, 64) and scale.shape == (2, 2 * TILE)
    padded = np.zeros((2 * TILE, 512), np.int8)
    padded[: TILE + 3] = xq
    for b, j, tt in np.ndindex(2, 8, 2):
        operand = bx[b, j, tt].reshape(8, TILE, 4).transpose(1, 0, 2).reshape(TILE, 32)
        want = padded[TILE * tt : TILE * (tt + 1), 256 * b + 32 * j : 256 * b + 32 * (j + 1)]
        np.testing.assert_array_equal(operand, want)
    np.testing.assert_array_equal(scale[:, : TILE + 3], dx.T)
    assert not scale[:, TILE + 3 :].any() and not level_sums[..., TILE + 3 :].any()
    sub_block_sums = xq.reshape(TILE + 3, 2, 8, 32).sum(axis=-1, dtype=np.int64)
    want = (sub_block_sums * dx[:, :, None].astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(level_sums[..., : TILE + 3], want.transpose(1, 2, 0))
