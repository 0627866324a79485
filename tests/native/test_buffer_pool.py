"""The result-buffer pool gives memory back: idle buffers stay under the session's cap, and a
large one is freed once it has sat idle; buffers in use are never taken from their users."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import ember.nn as nn
from ember.driver import CPU
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.engine.backends.native.buffer_pool import (
    ALIGNMENT,
    IDLE_SECONDS,
    LARGE_BYTES,
    BufferPool,
)
from ember.graph import Graph, TensorType


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    pytest.skip("no /proc/self/status here")


def big_lookup(max_idle_bytes=None):
    table = np.ones((64, 16384), np.float32)  # 64 KiB rows
    emb = nn.EmbeddingV2(64, 16384, DType.float32, name="t")
    with Graph("big", input_types=[TensorType(DType.int32, ["n"])]) as g:
        g.output(emb(g.inputs[0]))
    session = InferenceSession(max_idle_bytes=max_idle_bytes)
    ids = np.arange(4096, dtype=np.int32) % 64  # a 256 MiB result
    return session, session.load(g, {"t": table}), ids


def test_a_dropped_large_result_goes_back_to_the_system():
    session, model, ids = big_lookup()
    result = model.execute(ids)[0]
    result.to_numpy()[:] = 1  # every page resident
    held = rss()
    del result
    gc.collect()
    deadline = time.monotonic() + 20 * IDLE_SECONDS  # freed after ~IDLE_SECONDS; bounded wait
    while rss() > held - (200 << 20) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rss() <= held - (200 << 20), "the idle 256 MiB buffer was not returned"
    assert session._backend._pool.held_bytes < LARGE_BYTES


def test_idle_buffers_stay_under_the_cap_and_used_ones_stay_with_their_users():
    pool = BufferPool(max_idle_bytes=8 << 20)
    small = [pool.empty((1 << 20,), np.dtype(np.uint8)) for _ in range(12)]  # 12 MiB in use
    pool.trim()
    assert pool.held_bytes >= 12 << 20  # in use: kept and never lent twice
    del small
    pool.trim()
    assert pool.held_bytes <= 8 << 20
    large = pool.empty((LARGE_BYTES,), np.dtype(np.uint8))
    pool.trim()
    assert pool.held_bytes >= LARGE_BYTES and large.size == LARGE_BYTES


def test_the_cap_is_a_session_setting():
    with pytest.raises(ValueError, match="max_idle_bytes must be >= 0"):
        InferenceSession(max_idle_bytes=-1)
    with pytest.raises(ValueError, match="max_idle_bytes caps the native backend"):
        InferenceSession(backend="xla", max_idle_bytes=1 << 20)
    session, model, ids = big_lookup(max_idle_bytes=0)
    model.execute(ids[:10])
    session._backend._pool.trim()
    assert session._backend._pool.held_bytes == 0


@pytest.mark.parametrize("dtype", [np.dtype(np.float32), np.dtype(ml_dtypes.bfloat16)])
def test_reused_buffers_of_odd_row_sizes_stay_aligned_and_exact(dtype):
    """Rows of 33 values are not a whole number of cache lines, so a result's size is no
    multiple of 64: every buffer lent, fresh or reused, must still start on a cache line or at the
    table's offset within one (copies run fastest so) and hold exactly the requested rows."""
    vocab, hidden = 257, 33
    bits = np.random.default_rng(7).integers(0, 1 << 16, (vocab, hidden * dtype.itemsize // 2))
    table = bits.astype(np.uint16).view(dtype)  # every bit pattern: NaNs, -0.0, subnormals
    emb = nn.EmbeddingV2(vocab, hidden, DType.from_numpy(dtype), name="t")
    with Graph("odd", input_types=[TensorType(DType.int32, ["n"])]) as g:
        g.output(emb(g.inputs[0]))
    session = InferenceSession(devices=[CPU()], backend="native")
    model = session.load(g, {"t": table})
    rng = np.random.default_rng(8)
    kept = []
    # (rows, keep the result alive after the step): growing, shrinking, reusing dropped ones
    steps = [(64, True), (65, False), (100, True), (3, False), (64, False), (65, True), (3, True)]
    steps += [(100, False), (64, True), (1, False), (100, False)]
    for rows, keep in steps:
        ids = rng.integers(0, vocab, rows, dtype=np.int32)
        got = model.execute(ids)[0].to_numpy()
        # the pool lends cache-line-aligned buffers (a shape's first call); the fast path starts
        # results where the table's rows start within a cache line
        offsets = (0, table.ctypes.data % ALIGNMENT)
        assert got.ctypes.data % ALIGNMENT in offsets, f"{rows} rows at {got.ctypes.data:#x}"
        assert got.shape == (rows, hidden) and got.dtype == dtype
        assert np.array_equal(got.view(np.uint16), table[ids].view(np.uint16)), f"{rows} rows"
        if keep:
            kept.append((got, table[ids]))
        del got
    for got, want in kept:  # later steps never wrote into a result still held
        assert np.array_equal(got.view(np.uint16), want.view(np.uint16))
