"""Threads running a new vocabulary-parallel model's first execute on XLA at once share one
compiled exchange, and its count of exchanged bytes misses none of their executes."""

import sys
import threading

import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import DeviceRef, Graph, TensorType

pytest.importorskip("jax")

THREADS = 8
CALLS = 20


@pytest.fixture
def tiny_switch_interval():
    """Python threads switched as often as possible: a race shows on the first run."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.parametrize("model_number", range(8))  # a race needs a few fresh models to show
def test_concurrent_first_executes_share_one_exchange(tiny_switch_interval, model_number):
    table = np.arange(64 * 4, dtype=np.float32).reshape(64, 4) + model_number
    refs = [DeviceRef.CPU(0), DeviceRef.CPU(1)]
    emb = nn.VocabParallelEmbedding(64, 4, DType.float32, devices=refs, name="t")
    with Graph("vp", input_types=[TensorType(DType.int32, ["n"])]) as g:
        g.output(*emb(g.inputs[0]))
    model = InferenceSession(backend="xla").load(g, {"t": table})
    ids = np.arange(0, 64, 4, dtype=np.int32)  # half the rows on each device
    start = threading.Barrier(THREADS)
    wrong: list[str] = []

    def execute() -> None:
        start.wait()
        for _ in range(CALLS):
            for out in model.execute(ids):
                if not np.array_equal(out.to_numpy(), table[ids]):
                    wrong.append("a result differs from table[ids]")

    threads = [threading.Thread(target=execute) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong
    [sharded] = model._executable._memo.values()
    before = sharded.exchanged_bytes
    model.execute(ids)
    per_execute = sharded.exchanged_bytes - before
    assert per_execute > 0
    assert before == THREADS * CALLS * per_execute
