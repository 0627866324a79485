"""A thread that asks for a parallel kernel while another thread's runs gets the single-thread
kernel, with the same result, instead of waiting (or crashing numba's thread pool)."""

from __future__ import annotations

import numpy as np

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.engine.backends.native.kernels.dequantize_gather import gather_dequantize
from ember.engine.backends.native.kernels.gather import gather_rows
from ember.engine.backends.native.kernels.launch import PARALLEL_LAUNCH, launch
from ember.engine.backends.native.kernels.out_of_range import ZERO as MODE_ZERO
from ember.graph import Graph, TensorType
from ember.quant import FORMATS


def test_launch_runs_serial_while_the_pool_is_taken():
    assert launch(lambda: "parallel", lambda: "serial") == "parallel"
    with PARALLEL_LAUNCH:
        assert launch(lambda: "parallel", lambda: "serial") == "serial"
    assert not PARALLEL_LAUNCH.locked()


def test_kernels_asked_for_parallel_while_another_runs():
    rng = np.random.default_rng(0)
    table = rng.standard_normal((50, 300)).astype(np.float32)
    blocks = FORMATS["q4_k"].quantize(rng.standard_normal((50, 256)).astype(np.float32))
    ids = np.array([3, 60, 0, 49, 7])
    emb = nn.EmbeddingV2(50, 300, DType.float32, name="t")
    with Graph("g", input_types=[TensorType(DType.int64, ["n"])]) as g:
        g.output(emb(g.inputs[0]))
    model = InferenceSession(backend="native").load(g, {"t": table})
    big = np.tile(ids[ids < 50], 200)  # a result over the parallel threshold
    for _ in range(2):  # the general path, then the fast one, which prepares its kernels
        np.testing.assert_array_equal(model.execute(big)[0].to_numpy(), table[big])
    with PARALLEL_LAUNCH:  # as if another thread's parallel kernel were running
        out = np.full((ids.size, 300), 7, np.float32)
        assert gather_rows(table, ids, 0, MODE_ZERO, out, True) == -1
        want = table[[3, 0, 0, 49, 7]]
        want[1] = 0
        np.testing.assert_array_equal(out, want)
        decoded = np.zeros((ids.size, 256), np.float32)
        assert gather_dequantize("q4_k", blocks, ids, 0, MODE_ZERO, decoded, True) == -1
        want = FORMATS["q4_k"].dequantize(blocks[[3, 0, 0, 49, 7]])
        want[1] = 0
        np.testing.assert_array_equal(decoded, want)
        np.testing.assert_array_equal(
            model.execute(big[big < 50])[0].to_numpy(), table[big[big < 50]]
        )
