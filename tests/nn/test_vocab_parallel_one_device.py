"""A `VocabParallelEmbedding` over one device is a plain lookup: its graph holds a gather, not a
sharded one (so the backends' fast paths serve it), and its rows keep their exact bits."""

import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.graph import DeviceRef, Graph, TensorType
from ember.graph.ops.gather import GATHER
from ember.graph.ops.sharded_gather import SHARDED_GATHER


def one_device_graph(vocab, hidden, device=0, ids_shape=("n",), **layer):
    emb = nn.VocabParallelEmbedding(
        vocab, hidden, DType.float32, devices=[DeviceRef.CPU(device)], name="t", **layer
    )
    with Graph("vp1", input_types=[TensorType(DType.int64, list(ids_shape))]) as g:
        g.output(*emb(g.inputs[0]))
    return g


@pytest.mark.parametrize("device", [0, 1])
def test_one_device_lowers_to_a_plain_gather(device):
    ops = [node.op for node in one_device_graph(9, 4, device).live_nodes()]
    assert GATHER in ops
    assert SHARDED_GATHER not in ops


def test_scatter_over_one_device_still_needs_an_axis_to_split():
    with pytest.raises(ValueError, match="first axis"):
        one_device_graph(9, 4, ids_shape=(), reduce="scatter")


def test_one_device_takes_the_native_fast_path(session):
    table = np.arange(36, dtype=np.float32).reshape(9, 4)
    model = session.load(one_device_graph(9, 4), {"t": table})
    ids = np.array([8, 0, 3])
    np.testing.assert_array_equal(model.execute(ids)[0].to_numpy(), table[ids])
    if session.backend == "native":
        assert model._executable.fast_path is not None


@pytest.mark.parametrize("policy", ["error", "zero", "clamp"])
def test_one_device_rows_keep_their_bits_on_every_policy(session, policy):
    table = np.random.default_rng(3).standard_normal((9, 8)).astype(np.float32)
    table[2] = -0.0
    table[7] = np.frombuffer(np.uint32(0x7FC0_1234).tobytes() * 8, np.float32)  # a NaN payload
    ids = np.array([2, 7, 0, 8, 2]) if policy == "error" else np.array([2, 7, -1, 9, 8])
    single = nn.EmbeddingV2(9, 8, DType.float32, name="t", out_of_range=policy)
    with Graph("one", input_types=[TensorType(DType.int64, ["n"])]) as g:
        g.output(single(g.inputs[0]))
    want = session.load(g, {"t": table}).execute(ids)[0].to_numpy()
    [got] = session.load(one_device_graph(9, 8, out_of_range=policy), {"t": table}).execute(ids)
    assert got.to_numpy().tobytes() == want.tobytes()
    if policy == "error":
        assert want.tobytes() == table[ids].tobytes()
