"""Bags on a CPU with AVX's 16 vector registers (compiled for Haswell in a subprocess): decoded
and weighted rows are summed 64 columns at a time, so that the sums stay in registers, and
still give the float32 sums of the rows in bag order, bit for bit, as on AVX-512's 128."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
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


def test_avx_bags_sum_in_tiles_of_64_columns(tmp_path):
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("compiled for an x86-64 CPU")
    env = dict(
        os.environ,
        NUMBA_CPU_NAME="haswell",
        NUMBA_CPU_FEATURES="+avx,+avx2,+fma,+f16c,+sse4.2",
        NUMBA_CACHE_DIR=str(tmp_path),
        EMBER_COMPILE="sync",
    )
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "ok"
