"""Kernels compiled for a CPU with AVX's 16 vector registers (Haswell, in a subprocess) size
their register tiles for it, and give the bits they give with AVX-512's 32: bags sum decoded
and weighted rows 64 columns at a time, and the quantized head dots a row with four tokens, or
two rows with one token, at a time, Q4_K's nibbles split on widened words.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ember.engine.backends.native.kernels.compiled.target import target_has

BAGS = textwrap.dedent(
    """
    import numpy as np
    import ember.nn as nn
    from ember.dtype import DType
    from ember.engine import InferenceSession
    from ember.graph import Graph, QuantizationEncoding, TensorType
    from ember.engine.backends.native.kernels import bag
    from ember.quant import FORMATS

    assert bag._widest_tile(bag.ROW_INT8, False) == 64
    assert bag._widest_tile(bag.ROW_FLOAT32, True) == 64
    assert bag._widest_tile(bag.ROW_FLOAT32, False) == 128

    rng = np.random.default_rng(5)
    ids = rng.integers(0, 50, 60)
    offsets = np.array([0, 0, 1, 19, 40])
    weights = rng.standard_normal(60).astype(np.float32)

    def bags(table, rows, dtype, encoding=None, weighted=False):
        layer = nn.EmbeddingBag(50, table.shape[1], dtype, name="t",
                                quantization_encoding=encoding)
        types = [TensorType(DType.int64, ["n"]), TensorType(DType.int64, ["b"])]
        types += [TensorType(DType.float32, ["n"])] if weighted else []
        with Graph("bags", input_types=types) as g:
            g.output(layer(*g.inputs))
        inputs = (ids, offsets, weights) if weighted else (ids, offsets)
        got = InferenceSession().load(g, {"t": table}).execute(*inputs)[0].to_numpy()
        for b, (start, end) in enumerate(zip(offsets, [*offsets[1:], len(ids)])):
            want = np.zeros(rows.shape[1], np.float32)
            for j in range(start, end):
                want += weights[j] * rows[ids[j]] if weighted else rows[ids[j]]
            np.testing.assert_array_equal(got[b], want, err_msg=f"bag {b}")

    dense = rng.standard_normal((50, 200)).astype(np.float32)
    bags(dense, dense, DType.float32, weighted=True)
    packed = FORMATS["rowwise_int8"].quantize(rng.standard_normal((50, 192)).astype(np.float32))
    decoded = FORMATS["rowwise_int8"].dequantize(packed).astype(np.float32)
    bags(packed, decoded, DType.uint8, QuantizationEncoding.ROWWISE_INT8)
    print("ok")
    """
)


HEAD = textwrap.dedent(
    """
    import numpy as np
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize
    from ember.engine.backends.native.kernels import quantized_rowdot as q
    from ember.engine.backends.native.kernels.rowdot import rowdot
    from ember.quant.samples import sample_table

    assert (q.TOKEN_GROUP, q.GROUP_ROWS, q.ROW_GROUP) == (4, 1, 2)
    table = sample_table("q4_k", 2 * q.ROW_BLOCK + 7, 512, seed=3)
    values = dequantize(table, GGMLQuantizationType.Q4_K).astype(np.float32)
    hidden = np.random.default_rng(4).standard_normal((5, 512)).astype(np.float32)
    got = np.full((5, table.shape[0]), np.nan, np.float32)
    q.quantized_rowdot("q4_k", hidden, table, got, parallel=False)
    want = np.empty_like(got)
    rowdot(hidden, values, want)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    print("ok")
    """
)


INT8 = textwrap.dedent(
    """
    import sys
    import numpy as np
    from ember.engine.backends.native.kernels import int8_rowdot as k

    assert not k.VNNI and k.INT8_FORMATS == ("q4_k", "q6_k")
    cases = np.load(sys.argv[1])
    for name in {key.rsplit("-", 1)[0] for key in cases.files}:
        fmt = name.split("-")[0]
        hidden, table, want = (cases[f"{name}-{part}"] for part in ("hidden", "table", "logits"))
        got = np.full(want.shape, np.nan, np.float32)
        k.int8_rowdot(fmt, hidden, table, got, parallel=False)
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32), err_msg=name)
    print("ok")
    """
)


def run_for_avx(script: str, cache: str, *args: str) -> None:
    if not target_has("avx2", "fma", "f16c"):
        pytest.skip("Haswell's code needs a CPU with AVX2, FMA and F16C")
    env = dict(
        os.environ,
        NUMBA_CPU_NAME="haswell",
        NUMBA_CPU_FEATURES="+avx,+avx2,+fma,+f16c,+sse4.2",
        NUMBA_CACHE_DIR=cache,
        EMBER_COMPILE="sync",
    )
    result = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "ok"


def test_avx_bags_sum_in_tiles_of_64_columns(tmp_path):
    run_for_avx(BAGS, str(tmp_path))


def test_avx_quantized_head_tiles_give_the_dense_kernels_bits(tmp_path):
    """Tokens in fours and alone, rows in twos and alone (5 tokens, an odd number of rows)."""
    run_for_avx(HEAD, str(tmp_path))


def test_avx2_integer_head_gives_the_bits_of_this_cpus_kernel(tmp_path):
    """``int8_activations`` without VNNI: ``vpmaddubsw`` and ``vpmaddwd`` make the integer
    sums ``vpdpbusd`` makes, so the logits are this CPU's kernel's bits (AVX-512 VNNI's where
    it has them), for tokens in tiles of four and one row at a time alike."""
    from ember.engine.backends.native.kernels.int8_rowdot import INT8_FORMATS, int8_rowdot
    from ember.quant.samples import sample_table

    if not INT8_FORMATS:
        pytest.skip("this CPU has no integer head kernel to compare with")
    cases = {}
    for fmt in INT8_FORMATS:
        table = sample_table(fmt, 203, 512, seed=3)
        for tokens in (1, 2, 5):
            hidden = np.random.default_rng(tokens).standard_normal((tokens, 512))
            hidden = hidden.astype(np.float32)
            logits = np.empty((tokens, table.shape[0]), np.float32)
            int8_rowdot(fmt, hidden, table, logits, parallel=False)
            name = f"{fmt}-{tokens}"
            cases |= {f"{name}-hidden": hidden, f"{name}-table": table, f"{name}-logits": logits}
    np.savez(tmp_path / "cases.npz", **cases)
    run_for_avx(INT8, str(tmp_path / "cache"), str(tmp_path / "cases.npz"))
