"""Vocabulary-parallel lookups on CPU devices equal the unsharded lookup, on every policy."""

import numpy as np
import pytest

import ember.nn as nn
from ember.driver import CPU
from ember.dtype import DType
from ember.graph import DeviceRef, Graph, TensorType


def parallel_model(vocab, hidden, devices, **layer):
    refs = [DeviceRef.CPU(i) for i in range(devices)]
    emb = nn.VocabParallelEmbedding(vocab, hidden, DType.float32, devices=refs, name="t", **layer)
    with Graph("vp", input_types=[TensorType(DType.int64, ["batch", "seq"])]) as g:
        g.output(*emb(g.inputs[0]))
    return g


@pytest.mark.parametrize(("vocab", "devices"), [(10, 1), (10, 3), (7, 4), (1000, 2), (5, 8)])
def test_equals_unsharded_lookup(session, vocab, devices):
    rng = np.random.default_rng(vocab * devices)
    table = rng.standard_normal((vocab, 16)).astype(np.float32)
    ids = rng.integers(0, vocab, (3, 5))
    outputs = session.load(parallel_model(vocab, 16, devices), {"t": table}).execute(ids)
    assert [out.device for out in outputs] == [CPU(i) for i in range(devices)]
    for out in outputs:
        np.testing.assert_array_equal(out.to_numpy(), table[ids])
    if devices > 1 and session.backend == "native":  # one shared buffer, seen read-only
        assert np.shares_memory(outputs[0].to_numpy(), outputs[1].to_numpy())
        assert not any(out.to_numpy().flags.writeable for out in outputs)


@pytest.mark.parametrize("devices", [1, 2, 4])
@pytest.mark.parametrize("ids_dtype", [DType.int32, DType.int64])
def test_rows_keep_their_exact_bits(session, devices, ids_dtype):
    table = np.random.default_rng(devices).standard_normal((9, 8)).astype(np.float32)
    table[2] = -0.0
    table[7, :4] = np.float32("nan")
    refs = [DeviceRef.CPU(i) for i in range(devices)]
    emb = nn.VocabParallelEmbedding(9, 8, DType.float32, devices=refs, name="t")
    with Graph("vp", input_types=[TensorType(ids_dtype, ["n"])]) as g:
        g.output(*emb(g.inputs[0]))
    ids = np.array([2, 7, 0, 8, 2], ids_dtype.to_numpy())
    for out in session.load(g, {"t": table}).execute(ids):
        assert out.to_numpy().tobytes() == table[ids].tobytes()


def test_bad_id_raises_instead_of_vanishing(session):
    table = np.ones((10, 4), np.float32)
    model = session.load(parallel_model(10, 4, 2), {"t": table})
    with pytest.raises(IndexError, match=r"id 10 at position \(0, 1\).*vocab_size=10"):
        model.execute(np.array([[1, 10]]))


@pytest.mark.parametrize("policy", ["zero", "clamp"])
def test_policies_match_the_single_device_layer(session, policy):
    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    ids = np.array([[-2, 3, 10, 99]])
    single = nn.EmbeddingV2(10, 4, DType.float32, name="t", out_of_range=policy)
    with Graph("one", input_types=[TensorType(DType.int64, ["batch", "seq"])]) as g:
        g.output(single(g.inputs[0]))
    want = session.load(g, {"t": table}).execute(ids)[0].to_numpy()
    for out in session.load(parallel_model(10, 4, 3, out_of_range=policy), {"t": table}).execute(
        ids
    ):
        np.testing.assert_array_equal(out.to_numpy(), want)


def test_clamp_of_huge_unsigned_ids_matches_the_single_device_layer(session):
    table = np.arange(20, dtype=np.float32).reshape(5, 4)
    emb = nn.VocabParallelEmbedding(
        5, 4, DType.float32, devices=[DeviceRef.CPU(0), DeviceRef.CPU(1)], name="t",
        out_of_range="clamp",
    )  # fmt: skip
    with Graph("vp", input_types=[TensorType(DType.uint64, ["n"])]) as g:
        g.output(*emb(g.inputs[0]))
    ids = np.array([2**64 - 1, 2**63, 3], np.uint64)
    for out in session.load(g, {"t": table}).execute(ids):
        np.testing.assert_array_equal(out.to_numpy(), table[[4, 4, 3]])


@pytest.mark.parametrize("devices", [1, 2, 4])
@pytest.mark.parametrize("policy", ["error", "zero", "clamp"])
def test_scatter_gives_each_device_its_slice_of_the_tokens(session, devices, policy):
    table = np.random.default_rng(devices).standard_normal((11, 8)).astype(np.float32)
    table[3] = -0.0
    refs = [DeviceRef.CPU(i) for i in range(devices)]
    emb = nn.VocabParallelEmbedding(
        11, 8, DType.float32, refs, name="t", out_of_range=policy, reduce="scatter"
    )
    with Graph("vp", input_types=[TensorType(DType.int64, ["batch", "seq"])]) as g:
        outs = emb(g.inputs[0])
        assert str(outs[0].shape[0]) == f"batch // {devices}" or devices == 1
        g.output(*outs)
    ids = np.random.default_rng(0).integers(0, 11, (4 * devices, 3))
    ids[0, 0] = 3
    if policy != "error":
        ids[-1, -1] = 99
    single = nn.EmbeddingV2(11, 8, DType.float32, name="t", out_of_range=policy)
    with Graph("one", input_types=[TensorType(DType.int64, ["batch", "seq"])]) as one:
        one.output(single(one.inputs[0]))
    want = session.load(one, {"t": table}).execute(ids)[0].to_numpy()
    outs = session.load(g, {"t": table}).execute(ids)
    part = len(ids) // devices
    for k, out in enumerate(outs):
        assert out.to_numpy().tobytes() == want[k * part : (k + 1) * part].tobytes()


def test_scatter_needs_ids_the_devices_divide(session):
    refs = [DeviceRef.CPU(i) for i in range(3)]
    emb = nn.VocabParallelEmbedding(10, 4, DType.float32, refs, name="t", reduce="scatter")
    with Graph("vp", input_types=[TensorType(DType.int32, ["n"])]) as g:
        g.output(*emb(g.inputs[0]))
    model = session.load(g, {"t": np.zeros((10, 4), np.float32)})
    with pytest.raises(ValueError, match=r"splits the ids' first axis over 3 devices.*\(4,\)"):
        model.execute(np.arange(4, dtype=np.int32))
    with (
        Graph("static", input_types=[TensorType(DType.int32, [4])]) as g2,
        pytest.raises(ValueError, match=r"\(4\) over 3 devices; it must divide evenly"),
    ):
        emb(g2.inputs[0])


def test_a_shared_result_refuses_writes_by_name(session):
    table = np.arange(20, dtype=np.float32).reshape(10, 2)
    first, _ = session.load(parallel_model(10, 2, 2), {"t": table}).execute(np.array([[1, 2]]))
    if session.backend == "native":  # one buffer both devices see: read-only
        with pytest.raises(ValueError, match="read-only"):
            first[0, 0, 0] = 5.0
    else:  # XLA's results are each its own
        first[0, 0, 0] = 5.0
        assert first.to_numpy()[0, 0].tolist() == [5.0, 3.0]
