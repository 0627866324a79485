"""Loading and executing: weights binding, inputs, result buffers."""

import numpy as np
import pytest

import ember.nn as nn
from ember.driver import Tensor
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.errors import InputError
from ember.graph import DeviceRef, Graph, TensorType, Weight, ops


def lookup_graph(vocab=10, hidden=4, dtype=DType.float32, shape=("batch", "seq")):
    emb = nn.EmbeddingV2(vocab, hidden, dtype, name="tokens")
    with Graph("lookup", input_types=[TensorType(DType.int32, shape)]) as g:
        g.output(emb(g.inputs[0]))
    return g


def test_weights_are_bound_without_copying(session, tmp_path):
    if session.backend != "native":
        pytest.skip("XLA copies weights to their device once, at load")
    table = np.zeros((10, 4), np.float32)
    model = session.load(lookup_graph(), {"tokens": table})
    table[7] = 42.0  # the model reads the caller's array itself
    assert (model.execute(np.array([[7]], np.int32))[0].to_numpy() == 42.0).all()

    path = tmp_path / "table.bin"
    mapped = np.memmap(path, np.float32, "w+", shape=(10, 4))
    model = session.load(lookup_graph(), {"tokens": mapped})
    bound = model._executable._plan.preset
    assert any(np.shares_memory(a, mapped) for a in bound.values())
    mapped[3] = 5.0
    assert (model.execute(np.array([[3]], np.int32))[0].to_numpy() == 5.0).all()


def test_missing_weight_lists_close_names(session):
    with pytest.raises(ValueError, match=r"no array for 'tokens' \(close: 'token'\)"):
        session.load(lookup_graph(), {"token": np.zeros((10, 4), np.float32)})


def test_misshapen_and_mistyped_weights(session):
    with pytest.raises(ValueError, match=r"expected shape \(10, 4\), got \(4, 10\)"):
        session.load(lookup_graph(), {"tokens": np.zeros((4, 10), np.float32)})
    with pytest.raises(TypeError, match="expected dtype float32, got float16"):
        session.load(lookup_graph(), {"tokens": np.zeros((10, 4), np.float16)})
    with pytest.raises(TypeError, match="expected a numpy array or a DLPack object"):
        session.load(lookup_graph(), {"tokens": [[0.0] * 4] * 10})


def test_unused_weights_are_reported(session):
    with pytest.warns(UserWarning, match=r"\['extra'\] are not used"):
        session.load(lookup_graph(), {"tokens": np.zeros((10, 4), np.float32), "extra": 1})


def test_bad_inputs(session):
    model = session.load(lookup_graph(), {"tokens": np.zeros((10, 4), np.float32)})
    with pytest.raises(InputError, match="expected dtype int32, got float32") as raised:
        model.execute(np.zeros((1, 2), np.float32))
    assert isinstance(raised.value, TypeError) and isinstance(raised.value, ValueError)
    with pytest.raises(ValueError, match="expected rank 2"):
        model.execute(np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="takes 1 inputs, got 2"):  # as MAX raises (and TypeError)
        model.execute(np.zeros((1, 1), np.int32), np.zeros((1, 1), np.int32))
    with pytest.raises(TypeError, match="got set"):
        model.execute({1, 2})


def test_symbolic_dims_must_agree_across_inputs(session):
    with Graph("pair", input_types=[TensorType(DType.int32, ["n", 2])] * 2) as g:
        g.output(g.inputs[0] + g.inputs[1])
    model = session.load(g)
    assert model.execute(np.ones((3, 2), np.int32), np.ones((3, 2), np.int32))[0].shape == (3, 2)
    with pytest.raises(ValueError, match="'n' = 3 elsewhere, got 4"):
        model.execute(np.ones((3, 2), np.int32), np.ones((4, 2), np.int32))
    with pytest.raises(ValueError, match="axis 1 must be 2"):
        model.execute(np.ones((3, 3), np.int32), np.ones((3, 3), np.int32))


def test_results_are_not_reused_while_held(session):
    if session.backend != "native":
        pytest.skip("XLA results are its own immutable device arrays")
    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    model = session.load(lookup_graph(), {"tokens": table})
    first = model.execute(np.array([[1]], np.int32))[0]
    view = first.to_numpy()
    second = model.execute(np.array([[2]], np.int32))[0]
    assert not np.shares_memory(view, second.to_numpy())
    np.testing.assert_array_equal(view, table[[[1]]])
    address = second.to_numpy().ctypes.data
    del second
    third = model.execute(np.array([[3]], np.int32))[0]
    assert third.to_numpy().ctypes.data == address  # a released buffer comes back


def test_execute_writes_into_out(session):
    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    model = session.load(lookup_graph(), {"tokens": table})
    out = np.empty((1, 2, 4), np.float32)
    result = model.execute(np.array([[1, 9]], np.int32), out=out)[0]
    assert np.shares_memory(result.to_numpy(), out)
    np.testing.assert_array_equal(out, table[[[1, 9]]])
    with pytest.raises(ValueError, match=r"out= array has shape \(1, 3, 4\)"):
        model.execute(np.array([[1, 9]], np.int32), out=np.empty((1, 3, 4), np.float32))


def test_results_share_memory_with_numpy_and_dlpack(session):
    model = session.load(lookup_graph(), {"tokens": np.ones((10, 4), np.float32)})
    result = model.execute(np.array([[1]], np.int32))[0]
    assert isinstance(result, Tensor) and result.dtype is DType.float32
    assert np.shares_memory(np.from_dlpack(result), result.to_numpy())


def test_graph_without_outputs_and_gpu_graph_are_rejected(session):
    with Graph("open", input_types=[TensorType(DType.int32, [1])]):
        pass
    g = Graph("open2")
    with pytest.raises(ValueError, match="has no outputs"):
        session.load(g)
    gpu = nn.EmbeddingV2(10, 4, DType.float32, DeviceRef.GPU(), name="tokens")
    with Graph("gpu", input_types=[TensorType(DType.int32, [1])]) as g:
        g.output(gpu(g.inputs[0]))
    where = r"the graph places a value on gpu:0 \(its .*cannot run on"
    with pytest.raises(ValueError, match=where):
        session.load(g, {"tokens": np.zeros((10, 4), np.float32)})


def test_session_arguments():
    with pytest.raises(ValueError, match="num_threads must be in"):
        InferenceSession(num_threads=0)
    with pytest.raises(TypeError, match=r"ember\.driver devices"):
        InferenceSession(devices=["cpu"])


def test_elementwise_and_shape_ops_execute_like_numpy(session):
    x = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    y = np.array([3, -2, 5, 7], np.int32)
    with Graph(
        "ops", input_types=[TensorType(DType.int32, ["n", 4]), TensorType(DType.int32, [4])]
    ) as g:
        a, b = g.inputs
        g.output(
            a + b, a - b, a * b, a / b, a // b, ops.max(a, b), -a, a < b,
            ops.logical_and(a > 0, b > 0), ops.select(a > b, a, b),
            a.reshape([-1]), a[:, 1:3], ops.unsqueeze(a, 0), a.cast(DType.float32),
        )  # fmt: skip
    results = [t.to_numpy() for t in session.load(g).execute(x, y)]
    expected = [
        x + y, x - y, x * y, x / y, x // y, np.maximum(x, y), -x,  # "/" of ints: float64
        x < y, (x > 0) & (y > 0), np.where(x > y, x, y), x.reshape(-1), x[:, 1:3], x[None],
        x.astype(np.float32),
    ]  # fmt: skip
    for got, want in zip(results, expected, strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_float_division_by_a_broadcast_divisor_is_rounded_once(session):
    """XLA would multiply by the divisor's reciprocal (an ulp off for 7 / 3); both backends
    give numpy's correctly rounded quotients, and so does a bag's mean."""
    x = np.array([[2.5, 7.0, 10.0], [1.0, -7.0, 1e-3]], np.float32)
    types = [TensorType(DType.float32, [2, 3]), TensorType(DType.float32, [])]
    with Graph("div", input_types=types) as g:
        g.output(g.inputs[0] / g.inputs[1], g.inputs[0] / g.inputs[0][:, 0:1])
    by_scalar, by_column = (t.to_numpy() for t in session.load(g).execute(x, np.float32(3)))
    assert by_scalar.tobytes() == (x / np.float32(3)).tobytes()
    assert by_column.tobytes() == (x / x[:, 0:1]).tobytes()
    bag = nn.EmbeddingBag(3, 2, DType.float32, name="t", mode="mean")
    with Graph("mean", input_types=[TensorType(DType.int64, [1, 3])]) as g:
        g.output(bag(g.inputs[0]))
    table = np.array([[7.0, 1.0], [0.0, 1.0], [0.0, 1.0]], np.float32)
    [mean] = (t.to_numpy() for t in session.load(g, {"t": table}).execute(np.array([[0, 1, 2]])))
    assert mean.tobytes() == (table.sum(axis=0, keepdims=True) / np.float32(3)).tobytes()


def test_slices_of_a_symbolic_dim_as_maxs_logits_take_them(session):
    """`offsets[1:] - 1`: the last token of each sequence, the rows a head reads; an axis
    shorter than a slice needs is an error at execution, never a shorter result."""
    types = [TensorType(DType.float32, ["tokens", 2]), TensorType(DType.uint32, ["offsets"])]
    with Graph("last_tokens", input_types=types) as g:
        hidden, offsets = g.inputs
        g.output(ops.gather(hidden, offsets[1:] - 1, axis=0), offsets[:-1], offsets[-2:])
    model = session.load(g)
    hidden = np.arange(12, dtype=np.float32).reshape(6, 2)
    offsets = np.array([0, 2, 3, 6], np.uint32)
    last, starts, tail = (t.to_numpy() for t in model.execute(hidden, offsets))
    np.testing.assert_array_equal(last, hidden[[1, 2, 5]])
    np.testing.assert_array_equal(starts, [0, 2, 3])
    np.testing.assert_array_equal(tail, [3, 6])
    with pytest.raises(ValueError, match=r"axis 0 has 1 elements at execution; \[-2:\] needs"):
        model.execute(hidden, np.array([0], np.uint32))


def test_index_arrays_and_graph_values_are_refused_by_name():
    """A numpy array or a graph value among the index items (which compare elementwise) is
    named, not compared to `...`."""
    with Graph("fancy", input_types=[TensorType(DType.float32, [3, 4])]) as g:
        x = g.inputs[0]
        with pytest.raises(TypeError, match="got array"):
            _ = x[np.array([0, 2])]
        with pytest.raises(TypeError, match="got TensorValue"):
            _ = x[x[0, 0]]
        assert x[[0, 2]].shape == []  # a list is the items of one index, as in MAX


def test_an_int_index_past_a_symbolic_axis_raises_on_every_backend(session):
    """XLA would clamp it (JAX's indexing) and numpy raise: both raise one clear error."""
    with Graph("index", input_types=[TensorType(DType.float32, ["n"])]) as g:
        g.output(g.inputs[0][3], g.inputs[0][-3])
    model = session.load(g)
    first, last = (t.to_numpy() for t in model.execute(np.arange(5, dtype=np.float32)))
    assert (first, last) == (3.0, 2.0)
    with pytest.raises(ValueError, match=r"axis 0 has 2 elements at execution; \[3\] needs"):
        model.execute(np.arange(2, dtype=np.float32))


def test_a_slice_by_dims_an_input_binds(session):
    """`table[start:start + n]`, as a rotary embedding slices its table by positions: the
    ends are checked at each execution; other ends with dims are refused at build."""
    table = np.arange(20, dtype=np.float32).reshape(10, 2)
    types = [TensorType(DType.float32, ["n", 2]), TensorType(DType.int32, ["start"])]
    with Graph("window", input_types=types) as g:
        x, start = g.inputs
        begin = start.shape[0]
        rows = ops.constant(table, DType.float32)[begin : begin + x.shape[0]]
        assert rows.shape == ["n", 2]
        for bad in (slice(begin, -1), slice(begin, begin + 4, 2), slice(-2, begin)):
            with pytest.raises(ValueError, match="ends that count from the start"):
                _ = ops.constant(table, DType.float32)[bad]
        g.output(rows + x)
    model = session.load(g)
    got = model.execute(np.zeros((3, 2), np.float32), np.zeros(6, np.int32))[0].to_numpy()
    np.testing.assert_array_equal(got, table[6:9])
    with Graph("tail", input_types=[TensorType(DType.int32, ["start"])]) as g:
        begin = g.inputs[0].shape[0]
        rows = ops.constant(table, DType.float32)
        g.output(rows[begin:], rows[begin:begin])  # the rest, and nothing (anywhere)
    tail = session.load(g)
    rest, nothing = (t.to_numpy() for t in tail.execute(np.zeros(7, np.int32)))
    np.testing.assert_array_equal(rest, table[7:])
    assert nothing.shape == (0, 2)
    with pytest.raises(ValueError, match=r"\[start:\] is \[12:10\] at this execution"):
        tail.execute(np.zeros(12, np.int32))
    with Graph("none", input_types=[TensorType(DType.int32, ["start"])]) as g:
        begin = g.inputs[0].shape[0]
        g.output(ops.constant(table, DType.float32)[begin:begin])  # as Python's [12:12]
    empty = session.load(g).execute(np.zeros(12, np.int32))[0].to_numpy()
    assert empty.shape == (0, 2)
    with pytest.raises(ValueError, match=r"is \[8:11\] at this execution"):
        model.execute(np.zeros((3, 2), np.float32), np.zeros(8, np.int32))


@pytest.mark.parametrize(
    ("dims", "item"),
    [([5], slice(None, None, 2**63)), ([5], slice(None, None, -(2**63))),
     ([5], slice(4, None, -2)), ([5], slice(10, None)), ([5], slice(-10, 2, -1)),
     (["n"], slice(3, 1)), (["n"], slice(-1, -3))],
)  # fmt: skip
def test_slices_numpy_takes_at_their_edges(session, dims, item):
    """Steps past the axis (XLA refuses a step past int64), ends past it, and slices of a
    symbolic axis that are empty whatever its size."""
    with Graph("edges", input_types=[TensorType(DType.float32, dims)]) as g:
        g.output(g.inputs[0][item])
    x = np.arange(5, dtype=np.float32)
    got = session.load(g).execute(x)[0].to_numpy()
    assert got.shape == x[item].shape and got.tolist() == x[item].tolist()


@pytest.mark.parametrize(
    "item",
    [slice(None, None, 2), slice(1, None, 3), slice(2, -1, 2), slice(-5, None, 2),
     slice(None, None, -1), slice(None, None, -3)],
)  # fmt: skip
def test_stepped_slices_of_a_symbolic_dim_as_numpy_takes_them(session, item):
    with Graph("steps", input_types=[TensorType(DType.float32, ["n", 2])]) as g:
        g.output(g.inputs[0][item])
    model = session.load(g)
    for n in (7, 8, 10):
        x = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
        np.testing.assert_array_equal(model.execute(x)[0].to_numpy(), x[item])


@pytest.mark.parametrize(
    "index",
    [(..., None), (slice(None), None), (None,), (None, 0, None, ..., None), (1, None, slice(0, 2)),
     (None, ..., 2), (..., None, 1, None)],
)  # fmt: skip
def test_none_in_an_index_is_a_new_axis_as_in_numpy(session, index):
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    with Graph("new_axes", input_types=[TensorType(DType.float32, ["a", 3, 4])]) as g:
        g.output(g.inputs[0][index])
    np.testing.assert_array_equal(session.load(g).execute(x)[0].to_numpy(), x[index])


def test_inputs_the_outputs_ignore_are_still_checked(session):
    with Graph("unused", input_types=[TensorType(DType.int32, ["n"])] * 2) as g:
        g.output(g.inputs[0] + 1)
    model = session.load(g)
    ids = np.array([1, 2], np.int32)
    np.testing.assert_array_equal(model.execute(ids, ids)[0].to_numpy(), ids + 1)
    with pytest.raises(TypeError, match="input 1: expected dtype int32"):
        model.execute(ids, ids.astype(np.float64))


def test_out_for_an_output_listed_twice(session):
    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    emb = nn.EmbeddingV2(10, 4, DType.float32, name="tokens")
    with Graph("twice", input_types=[TensorType(DType.int32, ["n"])]) as g:
        rows = emb(g.inputs[0])
        g.output(rows, rows)
    model = session.load(g, {"tokens": table})
    first, second = np.zeros((2, 4), np.float32), np.zeros((2, 4), np.float32)
    model.execute(np.array([1, 9], np.int32), out=[first, second])
    np.testing.assert_array_equal(first, table[[1, 9]])
    np.testing.assert_array_equal(second, table[[1, 9]])
    with pytest.raises(ValueError, match=r"out\[0\] and out\[1\] overlap"):
        model.execute(np.array([1, 9], np.int32), out=[first, first])


def test_table_given_as_a_strided_input(session):
    with Graph(
        "g", input_types=[TensorType(DType.float32, ["v"]), TensorType(DType.int32, ["k"])]
    ) as g:
        g.output(ops.gather(g.inputs[0], g.inputs[1], axis=0))
    values = np.arange(10, dtype=np.float32)[::2]
    result = session.load(g).execute(values, np.array([3, 0], np.int32))[0].to_numpy()
    np.testing.assert_array_equal(result, values[[3, 0]])


def test_registry_must_be_a_mapping(session):
    with pytest.raises(TypeError, match="weights_registry maps weight names to arrays; got a list"):
        session.load(lookup_graph(), [np.zeros((10, 4), np.float32)])


def test_only_weights_the_outputs_read_are_required(session):
    used = nn.EmbeddingV2(10, 4, DType.float32, name="used")
    dead = nn.EmbeddingV2(10, 4, DType.float32, name="dead")
    with Graph("branches", input_types=[TensorType(DType.int32, ["n"])]) as g:
        dead(g.inputs[0])  # built, but no output depends on it
        g.output(used(g.inputs[0]))
    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    model = session.load(g, {"used": table})
    np.testing.assert_array_equal(model.execute(np.array([2], np.int32))[0].to_numpy(), table[[2]])


def test_out_may_not_overlap_inputs_or_weights(session):
    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    model = session.load(lookup_graph(shape=("n",)), {"tokens": table})
    with pytest.raises(ValueError, match=r"out\[0\] overlaps a weight or constant"):
        model.execute(np.array([1, 2, 3], np.int32), out=table[1:4])
    with Graph("echo", input_types=[TensorType(DType.float32, ["n"])]) as g:
        g.output(g.inputs[0] * 2)
    x = np.ones(4, np.float32)
    with pytest.raises(ValueError, match=r"out\[0\] overlaps input 0"):
        session.load(g).execute(x, out=x)


def test_strided_out_is_filled(session):
    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    model = session.load(lookup_graph(shape=("n",)), {"tokens": table})
    target = np.zeros((3, 8), np.float32)[:, ::2]
    model.execute(np.array([1, 2, 3], np.int32), out=target)
    np.testing.assert_array_equal(target, table[[1, 2, 3]])


def test_outputs_never_share_memory_with_inputs_weights_or_constants(session):
    if session.backend != "native":
        pytest.skip("XLA results are immutable: their host views are read-only")
    ids = np.array([1, 2], np.int32)
    with Graph("views", input_types=[TensorType(DType.int32, ["n"])]) as g:
        checked = ops.check_indices(ops.constant(ids), 5)
        g.output(g.inputs[0].reshape([-1]), checked, ops.constant(ids))
    model = session.load(g)
    for result in model.execute(ids):
        result.to_numpy()[0] = 4
    assert ids[0] == 1
    assert [r.to_numpy()[0] for r in model.execute(ids)] == [1, 1, 1]


def test_constants_keep_their_value_after_the_caller_changes_the_array(session):
    values = np.array([1.0, 2.0], np.float32)
    with Graph("c", input_types=[TensorType(DType.float32, [2])]) as g:
        g.output(g.inputs[0] + ops.constant(values))
    values[:] = 100
    model = session.load(g)
    np.testing.assert_array_equal(model.execute(np.zeros(2, np.float32))[0].to_numpy(), [1, 2])


def test_work_on_weights_alone_is_done_at_load(session):
    table = np.arange(80, dtype=np.float32).reshape(10, 8)
    with Graph("cols", input_types=[TensorType(DType.int32, ["n"])]) as g:
        columns = ops.as_value(Weight("t", DType.float32, [10, 8]))[:, 2:5] * 2
        g.output(ops.gather(columns, g.inputs[0], axis=0))
    model = session.load(g, {"t": table})
    if session.backend == "native":
        assert [step.op for step in model._executable._plan.steps] == ["gather"]
    else:
        [(segments, crossings)] = model._executable._stages
        assert [n.op.name for n in segments[0].nodes] == ["gather"] and not crossings
    ids = np.array([9, 0], np.int32)
    np.testing.assert_array_equal(model.execute(ids)[0].to_numpy(), table[ids, 2:5] * 2)


def test_an_output_listed_twice_gets_two_arrays(session):
    with Graph("twice", input_types=[TensorType(DType.int32, ["n"])]) as g:
        rows = nn.EmbeddingV2(10, 4, DType.float32, name="tokens")(g.inputs[0])
        g.output(rows, rows)
    first, second = session.load(g, {"tokens": np.ones((10, 4), np.float32)}).execute(
        np.array([1], np.int32)
    )
    assert not np.shares_memory(first.to_numpy(), second.to_numpy())


def test_dims_that_no_input_binds(session):
    from ember.graph import Dim

    with Graph("alg", input_types=[TensorType(DType.float32, [Dim("n") * 2])]) as g:
        g.output(g.inputs[0] + 1)
    with pytest.raises(ValueError, match="no input axis is plainly n"):
        session.load(g).execute(np.zeros(4, np.float32))
    with (
        Graph("new", input_types=[TensorType(DType.float32, ["n", 2])]) as g,
        pytest.raises(ValueError, match="names m, which no dim"),
    ):
        g.inputs[0].reshape([-1]).reshape(["m"])


def test_copying_a_large_strided_weight_is_announced(tmp_path):
    from ember.engine import InferenceSession

    mapped = np.lib.format.open_memmap(tmp_path / "t.npy", "w+", np.float32, (64, 2 << 18))
    strided = mapped[:, ::2]  # 64 MB of rows, not contiguous
    with Graph("g", input_types=[TensorType(DType.int32, ["n"])]) as g:
        g.output(ops.gather(Weight("t", DType.float32, list(strided.shape)), g.inputs[0], 0))
    with pytest.warns(UserWarning, match=r"weight 't': its array is strided.*copies all 64 MB"):
        InferenceSession().load(g, {"t": strided})


def test_a_table_its_framework_will_not_export_names_the_weight():
    from ember.engine import InferenceSession

    class RequiresGrad:  # as torch answers for a tensor with requires_grad=True
        def __dlpack__(self, **kwargs):
            raise RuntimeError("Can't export tensors that require gradient, use tensor.detach()")

        def __dlpack_device__(self):
            return (1, 0)

    with pytest.raises(TypeError, match=r"weight 'tokens': cannot read .*tensor\.detach\(\)"):
        InferenceSession().load(lookup_graph(), {"tokens": RequiresGrad()})
