"""The dense head's panels (`compiled.panel_dot`): the row tiles' logits, bit for bit, for any
rows, width and tokens, on this CPU, on AVX2 without AVX-512 and without fused multiply-adds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import ml_dtypes
import numpy as np
import pytest

from ember.engine.backends.native.kernels.compiled.dense_dot import rowdot_serial
from ember.engine.backends.native.kernels.compiled.panel_dot import (
    PANEL_ROWS,
    TOKEN_BLOCK,
    panel_rowdot_parallel,
    panel_rowdot_serial,
)
from ember.engine.backends.native.kernels.compiled.target import target_has
from ember.engine.backends.native.kernels.rowdot import LANES, rowdot

# The kernels read bfloat16 as its uint16 bits and float16 as int16 bits.
KERNEL_VIEWS = {np.float32: np.float32, ml_dtypes.bfloat16: np.uint16, np.float16: np.int16}


def row_tiles(hidden, table):
    out = np.full((hidden.shape[0], table.shape[0]), np.nan, np.float32)
    rowdot_serial(hidden, table, out)
    return out


def panels(hidden, table, parallel):
    out = np.full((hidden.shape[0], table.shape[0]), np.nan, np.float32)
    (panel_rowdot_parallel if parallel else panel_rowdot_serial)(hidden, table, out)
    return out


@pytest.mark.parametrize("dtype", list(KERNEL_VIEWS), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("width", [1, LANES - 1, LANES, LANES + 1, 8 * LANES + 7])
def test_panels_give_the_row_tiles_bits(dtype, width):
    """Whole and partial panels, whole and partial token tiles and blocks, a width tail."""
    rng = np.random.default_rng(width)
    rows = 9 * PANEL_ROWS + 5
    table = rng.standard_normal((rows, width)).astype(dtype).view(KERNEL_VIEWS[dtype])
    for tokens in (1, 3, 4, 5, TOKEN_BLOCK, 2 * TOKEN_BLOCK + 3):
        hidden = rng.standard_normal((tokens, width)).astype(np.float32)
        want = row_tiles(hidden, table)
        for parallel in (False, True):
            got = panels(hidden, table, parallel)
            np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def test_panels_keep_signed_zeros_infinities_and_nans_as_the_row_tiles_do():
    """-0.0 products, infinities and NaN in rows and tokens: the same values (and the same bits
    wherever the result is not NaN; which NaN payload is kept is not specified)."""
    rng = np.random.default_rng(3)
    width = 3 * LANES + 2
    table = rng.standard_normal((2 * PANEL_ROWS + 1, width)).astype(np.float32)
    hidden = rng.standard_normal((9, width)).astype(np.float32)
    table[0] = -0.0
    table[1, 5], table[2, -1], table[3, 7] = np.inf, -np.inf, np.nan
    hidden[0] = 0.0
    hidden[1, 40], hidden[2, -2] = np.nan, np.inf
    want = row_tiles(hidden, table)
    got = panels(hidden, table, parallel=False)
    np.testing.assert_array_equal(got, want)
    finite = ~np.isnan(want)
    np.testing.assert_array_equal(got[finite].view(np.uint32), want[finite].view(np.uint32))
    assert np.signbit(want[0, 0]) == np.signbit(got[0, 0])


def test_a_batch_on_panels_gives_each_token_its_own_logits(count_calls):
    """`rowdot` picks panels for large batches where they are faster, and the row tiles for a
    token alone: a token's logits do not depend on the batch it comes in."""
    from ember.engine.backends.native.kernels import rowdot as module

    calls = [count_calls(module, name) for name in ("panel_rowdot_serial", "panel_rowdot_parallel")]
    rng = np.random.default_rng(11)
    table = rng.standard_normal((5 * PANEL_ROWS + 7, 4 * LANES + 3)).astype(ml_dtypes.bfloat16)
    hidden = rng.standard_normal((40, table.shape[1])).astype(np.float32)
    batch = np.full((40, table.shape[0]), np.nan, np.float32)
    rowdot(hidden, table, batch)
    taken = sum(c[0] for c in calls)
    assert taken == (0 if module.PANEL_MIN_TOKENS is None else 1)
    for t in (0, 17, 39):
        alone = np.full((1, table.shape[0]), np.nan, np.float32)
        rowdot(np.ascontiguousarray(hidden[t : t + 1]), table, alone)
        np.testing.assert_array_equal(alone[0].view(np.uint32), batch[t].view(np.uint32))
    assert sum(c[0] for c in calls) == taken  # one token: the row tiles


OTHER_CPU = textwrap.dedent(
    """
    import sys
    import numpy as np
    from ember.engine.backends.native.kernels.compiled.dense_dot import rowdot_serial
    from ember.engine.backends.native.kernels.compiled.panel_dot import panel_rowdot_serial
    from ember.engine.backends.native.kernels.rowdot import PANEL_MIN_TOKENS

    assert PANEL_MIN_TOKENS == 12
    cases = np.load(sys.argv[1])
    hidden, table, want = cases["hidden"], cases["table"], cases["logits"]
    got = np.full(want.shape, np.nan, np.float32)
    panel_rowdot_serial(hidden, table, got)
    tiles = np.full(want.shape, np.nan, np.float32)
    rowdot_serial(hidden, table, tiles)
    np.testing.assert_array_equal(got.view(np.uint32), tiles.view(np.uint32))
    if sys.argv[2] == "same":
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    print("ok")
    """
)


@pytest.mark.parametrize(
    ("cpu", "features", "same"),
    [
        ("haswell", "+avx,+avx2,+fma,+f16c,+sse4.2", True),  # AVX2: this CPU's bits
        ("x86-64", "", False),  # no fused multiply-adds: a product, then a sum
    ],
)
def test_panels_compiled_for_another_cpu_give_its_row_tiles_bits(tmp_path, cpu, features, same):
    if not target_has("avx2", "fma", "f16c"):
        pytest.skip("the comparison runs Haswell's code: it needs AVX2, FMA and F16C")
    rng = np.random.default_rng(5)
    table = rng.standard_normal((3 * PANEL_ROWS + 1, 5 * LANES + 9)).astype(np.float32)
    hidden = rng.standard_normal((TOKEN_BLOCK + 5, table.shape[1])).astype(np.float32)
    logits = np.empty((hidden.shape[0], table.shape[0]), np.float32)
    rowdot(hidden, table, logits)
    cases = tmp_path / "cases.npz"
    np.savez(cases, hidden=hidden, table=table, logits=logits)
    env = dict(
        os.environ,
        NUMBA_CPU_NAME=cpu,
        NUMBA_CPU_FEATURES=features,
        NUMBA_CACHE_DIR=str(tmp_path / "cache"),
        EMBER_COMPILE="sync",
    )
    if not features:
        del env["NUMBA_CPU_FEATURES"]
    result = subprocess.run(
        [sys.executable, "-c", OTHER_CPU, str(cases), "same" if same else "own"],
        env=env,
        capture_output=True,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "ok"


@pytest.mark.parametrize("fmt", ["q4_k", "q6_k", "q8_0", "q4_0", "iq4_xs", "rowwise_int8"])
def test_decoded_rows_on_panels_give_the_fused_and_row_tile_bits(fmt):
    """`decoded_rowdot` at 12 tokens or more decodes rows into panels without AVX-512: its
    logits are the fused kernel's (Q4_K, Q6_K, Q8_0) and the row tiles' over the decoded
    table, one token at a time, bit for bit."""
    from ember.engine.backends.native.kernels.decoded_rowdot import decoded_rowdot
    from ember.engine.backends.native.kernels.quantized_rowdot import (
        FUSED_FORMATS,
        quantized_rowdot,
    )
    from ember.quant import FORMATS
    from ember.quant.samples import sample_table

    width = 512
    table = sample_table(fmt, 2 * PANEL_ROWS + 5, width, seed=2)
    hidden = np.random.default_rng(8).standard_normal((20, width)).astype(np.float32)
    got = np.full((20, table.shape[0]), np.nan, np.float32)
    decoded_rowdot(fmt, hidden, table, got)
    values = np.ascontiguousarray(FORMATS[fmt].dequantize(table), np.float32)
    for t in (0, 13, 19):
        alone = np.full((1, table.shape[0]), np.nan, np.float32)
        rowdot(np.ascontiguousarray(hidden[t : t + 1]), values, alone)
        np.testing.assert_array_equal(got[t].view(np.uint32), alone[0].view(np.uint32))
    if fmt in FUSED_FORMATS:
        fused = np.full_like(got, np.nan)
        quantized_rowdot(fmt, hidden, table, fused)
        np.testing.assert_array_equal(got.view(np.uint32), fused.view(np.uint32))
