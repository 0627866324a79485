"""Lookups executed by the native engine, against numpy fancy indexing."""

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ember.nn as nn
from ember.dtype import DType
from ember.graph import Graph, TensorType, Weight, ops

INDEX_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
TABLE_DTYPES = [np.float32, np.float16, ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn, np.float64]


def lookup_model(vocab, hidden, table_dtype, index_dtype, shape=("batch", "seq"), **layer):
    emb = nn.EmbeddingV2(vocab, hidden, DType.from_numpy(table_dtype), name="table", **layer)
    with Graph("lookup", input_types=[TensorType(DType.from_numpy(index_dtype), shape)]) as g:
        g.output(emb(g.inputs[0]))
    return g


def random_table(rng, vocab, hidden, dtype):
    return rng.standard_normal((vocab, hidden)).astype(dtype)


@settings(max_examples=40, deadline=None)
@given(
    vocab=st.integers(1, 300),
    hidden=st.integers(1, 70),
    table_dtype=st.sampled_from(TABLE_DTYPES),
    index_dtype=st.sampled_from(INDEX_DTYPES),
    ids_shape=st.lists(st.integers(0, 6), min_size=0, max_size=3),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_numpy_fancy_indexing(
    session, vocab, hidden, table_dtype, index_dtype, ids_shape, seed
):
    rng = np.random.default_rng(seed)
    vocab = min(vocab, int(np.iinfo(index_dtype).max) + 1)
    table = random_table(rng, vocab, hidden, table_dtype)
    ids = rng.integers(0, vocab, ids_shape).astype(index_dtype)
    dims = [f"d{i}" for i in range(len(ids_shape))]
    model = session.load(
        lookup_model(vocab, hidden, table_dtype, index_dtype, dims), {"table": table}
    )
    result = model.execute(ids)[0].to_numpy()
    assert result.dtype == table.dtype and result.shape == (*ids_shape, hidden)
    np.testing.assert_array_equal(result.view(np.uint8), table[ids].view(np.uint8))


def test_large_lookup_takes_the_parallel_path(session):
    rng = np.random.default_rng(1)
    table = random_table(rng, 5000, 1024, np.float32)
    ids = rng.integers(0, 5000, (4, 1024)).astype(np.int32)
    model = session.load(lookup_model(5000, 1024, np.float32, np.int32), {"table": table})
    np.testing.assert_array_equal(model.execute(ids)[0].to_numpy(), table[ids])


def test_rank0_and_empty_ids(session):
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    model = session.load(lookup_model(4, 3, np.float32, np.int64, shape=()), {"table": table})
    np.testing.assert_array_equal(model.execute(np.array(2))[0].to_numpy(), table[2])
    empty = session.load(lookup_model(4, 3, np.float32, np.int64, ("n",)), {"table": table})
    assert empty.execute(np.zeros(0, np.int64))[0].shape == (0, 3)


def test_non_contiguous_and_dlpack_inputs(session):
    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    model = session.load(lookup_model(10, 4, np.float32, np.int32), {"table": table})
    ids = (np.arange(20, dtype=np.int32).reshape(4, 5) % 10)[:, ::2]
    assert not ids.flags.c_contiguous
    np.testing.assert_array_equal(model.execute(ids)[0].to_numpy(), table[ids])

    class Producer:  # any object speaking DLPack
        def __init__(self, array):
            self.array = array

        def __dlpack__(self, **kwargs):
            return self.array.__dlpack__(**kwargs)

        def __dlpack_device__(self):
            return self.array.__dlpack_device__()

    ids = np.array([[3, 1]], np.int32)
    np.testing.assert_array_equal(model(Producer(ids))[0].to_numpy(), table[ids])


@pytest.mark.parametrize(
    ("policy", "expected_row"), [("zero", None), ("clamp", 9)]
)  # fmt: skip
def test_out_of_range_policies(session, policy, expected_row):
    table = np.arange(1, 41, dtype=np.float32).reshape(10, 4)
    g = lookup_model(10, 4, np.float32, np.int64, out_of_range=policy)
    model = session.load(g, {"table": table})
    result = model.execute(np.array([[2, 12]], np.int64))[0].to_numpy()
    np.testing.assert_array_equal(result[0, 0], table[2])
    want = np.zeros(4, np.float32) if expected_row is None else table[expected_row]
    np.testing.assert_array_equal(result[0, 1], want)
    low = model.execute(np.array([[-3, 0]], np.int64))[0].to_numpy()[0, 0]
    np.testing.assert_array_equal(low, np.zeros(4, np.float32) if policy == "zero" else table[0])


def test_out_of_range_error_names_id_position_and_vocab(session):
    table = np.zeros((10, 4), np.float32)
    model = session.load(lookup_model(10, 4, np.float32, np.int64), {"table": table})
    with pytest.raises(IndexError, match=r"id 12 at position \(1, 0\).*vocab_size=10"):
        model.execute(np.array([[1], [12]], np.int64))
    with pytest.raises(IndexError, match=r"id -1 at position \(0, 0\)"):
        model.execute(np.array([[-1]], np.int64))
    huge = session.load(lookup_model(10, 4, np.float32, np.uint64), {"table": table})
    with pytest.raises(IndexError, match=f"id {2**63 + 5}"):
        huge.execute(np.array([[2**63 + 5]], np.uint64))


def test_gather_wraps_negative_indices_like_max(session):
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    with Graph("g", input_types=[TensorType(DType.int32, ["n"])]) as g:
        g.output(ops.gather(Weight("t", DType.float32, [4, 3]), g.inputs[0], axis=0))
    model = session.load(g, {"t": table})
    np.testing.assert_array_equal(
        model.execute(np.array([-1, -4], np.int32))[0].to_numpy(), table[[3, 0]]
    )
    with pytest.raises(IndexError, match=r"id -5 at position \(0,\).*\[-4, 4\)"):
        model.execute(np.array([-5], np.int32))


def test_gather_on_other_axes(session):
    table = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    with Graph("g", input_types=[TensorType(DType.int64, [2])]) as g:
        w = Weight("t", DType.int16, [2, 3, 4])
        g.output(ops.gather(w, g.inputs[0], axis=2), ops.gather(w, g.inputs[0], axis=1))
    model = session.load(g, {"t": table})
    ids = np.array([2, -1], np.int64)
    by_last, by_middle = (t.to_numpy() for t in model.execute(ids))
    np.testing.assert_array_equal(by_last, np.take(table, ids, axis=2))
    np.testing.assert_array_equal(by_middle, np.take(table, ids, axis=1))


def test_gather_on_other_axes_rejects_huge_unsigned_ids(session):
    table = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    with Graph("g", input_types=[TensorType(DType.uint64, ["k"])]) as g:
        g.output(ops.gather(Weight("t", DType.float32, [2, 3, 4]), g.inputs[0], axis=1))
    model = session.load(g, {"t": table})
    with pytest.raises(IndexError, match=f"id {2**64 - 1} at position"):
        model.execute(np.array([2**64 - 1], np.uint64))


@pytest.mark.parametrize("policy", ["error", "wrap"])
def test_bad_ids_computed_inside_the_graph_raise_too(session, policy):
    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    with Graph("computed", input_types=[TensorType(DType.int64, ["n"])]) as g:
        shifted = g.inputs[0] + ops.constant(np.int64(3))
        g.output(ops.gather(Weight("t", DType.float32, [10, 4]), shifted, 0, out_of_range=policy))
    model = session.load(g, {"t": table})
    np.testing.assert_array_equal(model.execute(np.array([0, -3]))[0].to_numpy(), table[[3, 0]])
    with pytest.raises(IndexError, match=r"id 12 at position \(1,\).*vocab_size=10"):
        model.execute(np.array([0, 9, 1]))
