"""Outputs of the parallel kernel's size (from 512 KiB) come from the fast path's own spare
buffers, not the session's pool, up to the spares' size limit; results a caller holds are never
handed out again."""

from __future__ import annotations

import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.engine.backends.native import fast_lookup
from ember.engine.backends.native.buffer_pool import BufferPool
from ember.graph import DeviceRef, Graph, TensorType

ROW = 1 << 16  # 256 KiB float32 rows: 4 ids make a 1 MiB result


def model_of(table):
    emb = nn.EmbeddingV2(len(table), ROW, DType.float32, DeviceRef.CPU(), name="t")
    with Graph("g", input_types=[TensorType(DType.int64, ["n"])]) as g:
        g.output(emb(g.inputs[0]))
    return InferenceSession(num_threads=2, backend="native").load(g, {"t": table})


@pytest.fixture
def table():
    return np.random.default_rng(3).standard_normal((8, ROW)).astype(np.float32)


@pytest.fixture
def pool_requests(count_calls):
    return count_calls(BufferPool, "empty")


def test_large_results_reuse_spares(table, pool_requests):
    model = model_of(table)
    model.execute(np.array([0, 1, 2, 3]))  # the general path accepts the shape
    before = pool_requests[0]
    kept = model.execute(np.array([4, 5, 6, 7]))[0].to_numpy()
    addresses = set()
    for k in range(6):
        ids = np.array([k, 0, 7, k])
        result = model.execute(ids)[0].to_numpy()
        np.testing.assert_array_equal(result, table[ids])
        addresses.add(result.ctypes.data)
        del result
    assert pool_requests[0] == before
    assert len(addresses) == 1 and kept.ctypes.data not in addresses
    np.testing.assert_array_equal(kept, table[[4, 5, 6, 7]])


def test_outputs_beyond_the_spares_limit_take_the_pool(table, pool_requests, monkeypatch):
    monkeypatch.setattr(fast_lookup, "_SPARE_MAX_BYTES", 512 << 10)
    model = model_of(table)
    model.execute(np.array([0, 1, 2, 3]))
    before = pool_requests[0]
    for k in range(3):
        np.testing.assert_array_equal(
            model.execute(np.array([k, 1, 2, 3]))[0].to_numpy(), table[[k, 1, 2, 3]]
        )
    assert pool_requests[0] == before + 3
