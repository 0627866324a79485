"""Inputs as users hold them: lists and tuples (a tokenizer's ids), ids of another integer type
when every one fits, and clear errors otherwise; the devices MAX's `Model` reports."""

import numpy as np
import pytest

import ember.nn as nn
from ember.driver import CPU
from ember.dtype import DType
from ember.graph import Graph, TensorType

TABLE = np.arange(40, dtype=np.float32).reshape(10, 4)


def lookup(session, ids_dtype=DType.int32):
    emb = nn.EmbeddingV2(10, 4, DType.float32, name="t")
    with Graph("g", input_types=[TensorType(ids_dtype, ["n"])]) as g:
        g.output(emb(g.inputs[0]))
    return session.load(g, {"t": TABLE})


def test_lists_and_tuples_of_ids(session):
    model = lookup(session)
    np.testing.assert_array_equal(model.execute([3, 1, 9])[0].to_numpy(), TABLE[[3, 1, 9]])
    np.testing.assert_array_equal(model.execute((0,))[0].to_numpy(), TABLE[[0]])
    assert model.execute([])[0].shape == (0, 4)


@pytest.mark.parametrize("dtype", [DType.float32, DType.bfloat16, DType.float16])
def test_lists_of_floats_take_the_graphs_float_type(session, dtype):
    """Python floats carry no type of their own: a list becomes the input's, bfloat16 too."""
    with Graph("g", input_types=[TensorType(dtype, [2, 3])]) as g:
        g.output(g.inputs[0] * 2)
    values = [[1.0, 2.5, -3.0], [0.5, 4.0, 8.0]]
    result = session.load(g).execute(values)[0].to_numpy()
    assert result.dtype == dtype.to_numpy()
    np.testing.assert_array_equal(result.astype(np.float32), 2 * np.array(values, np.float32))


@pytest.mark.parametrize("dtype", [np.uint32, np.int64, np.uint64, np.int8, np.uint16])
def test_ids_of_another_integer_type_that_fit(session, dtype):
    ids = np.array([9, 0, 4], dtype)
    np.testing.assert_array_equal(lookup(session).execute(ids)[0].to_numpy(), TABLE[[9, 0, 4]])


def test_exact_dtype_ids_are_passed_without_a_copy(session):
    if session.backend != "native":
        pytest.skip("XLA copies inputs to its device")
    seen = []
    model = lookup(session)
    original = model._executable.run
    model._executable.run = lambda arrays, *rest: seen.extend(arrays) or original(arrays, *rest)
    ids = np.array([1, 2], np.int32)
    model.execute(ids)
    assert seen[0] is ids


def test_ids_that_do_not_fit_and_other_kinds_are_clear_errors(session):
    model = lookup(session)
    wider = r"int64 value 4294967296 does not fit the graph's int32 .*; declare .* a wider type"
    with pytest.raises(TypeError, match=wider):
        model.execute(np.array([1, 2**32]))
    with pytest.raises(TypeError, match=r"uint64 value 18446744073709551615 does not fit"):
        model.execute(np.array([2**64 - 1], np.uint64))
    unsigned = lookup(session, DType.uint32)
    with pytest.raises(TypeError, match=r"int32 value -1 does not fit the graph's uint32 .*; "
                       "declare the input with a signed type"):  # fmt: skip
        unsigned.execute(np.array([3, -1], np.int32))
    with pytest.raises(TypeError, match="expected dtype int32, got float64"):
        model.execute([1.5])
    with pytest.raises(TypeError, match="expected dtype int32, got float32"):
        model.execute(np.array([1.0], np.float32))
    with pytest.raises(TypeError, match="expected numbers"):
        model.execute(["a"])
    with pytest.raises(TypeError, match="not a rectangular array"):
        model.execute([[1, 2], [3]])
    for past_64_bits in ([2**70], [1, -(2**70)]):
        with pytest.raises(TypeError, match=r"value -?1180591620717411303424 does not fit"):
            model.execute(past_64_bits)
    with Graph("floats", input_types=[TensorType(DType.float32, [2])]) as g:
        g.output(g.inputs[0])
    with pytest.raises(TypeError, match=r"expected dtype float32, got Python ints past 64"):
        session.load(g).execute([2**70, 0])


def test_session_devices_are_a_list_and_none_means_the_cpu():
    from ember.engine import InferenceSession

    for one in ("cpu", CPU()):
        with pytest.raises(TypeError, match=r"devices is a list of ember.driver devices"):
            InferenceSession(devices=one)
    for none in ([], (), None, iter([])):  # MAX's default is (), the host CPU
        assert InferenceSession(devices=none).devices == [CPU()]


def test_a_converted_id_out_of_the_vocabulary_still_names_itself(session):
    with pytest.raises(IndexError, match=r"id 12 at position \(1,\)"):
        lookup(session).execute(np.array([1, 12], np.uint64))


def test_model_reports_its_devices(session):
    model = lookup(session)
    assert model.input_devices == [CPU()] and model.output_devices == [CPU()]
