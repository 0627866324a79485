"""`ops.while_loop` and `ops.cond` on each backend, against the same computation in numpy:
MAX's example, carried and captured values, a greedy decoding loop over a tied head, checks
raised from inside a loop, nesting, and the type rules."""

from __future__ import annotations

import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.errors import OutOfRangeError
from ember.graph import BufferType, DeviceRef, Graph, TensorType, Weight, ops


def test_maxs_example_counts_to_ten(session):
    with Graph("while_loop_example") as g:
        x = ops.constant(0, DType.int32, device=DeviceRef.CPU())
        g.output(*ops.while_loop(x, lambda x: x < 10, lambda x: x + 1))
    [result] = session.load(g).execute()
    assert int(result.to_numpy()) == 10
    text = str(g)  # the blocks are shown inside the loop's node
    assert "    graph while_loop_example.body(%0)\n      %0: int32[]@cpu:0 = input" in text


def loop_graph() -> Graph:
    types = [TensorType(DType.int64, []), TensorType(DType.float32, ["n"])]
    with Graph("doubling", input_types=types) as g:
        limit, v = g.inputs
        start = ops.constant(0, DType.int64)
        count, total = ops.while_loop(
            [start, v], lambda i, acc: i < limit, lambda i, acc: (i + 1, acc * 2 + v)
        )
        g.output(count, total)
    return g


@pytest.mark.parametrize("limit", [0, 1, 5])
def test_carried_and_captured_values(session, limit):
    model = session.load(loop_graph())
    v = np.array([1.0, -2.0, 0.5], np.float32)
    count, total = model.execute(np.int64(limit), v)
    expected = v.copy()
    for _ in range(limit):
        expected = expected * 2 + v
    assert int(count.to_numpy()) == limit
    np.testing.assert_array_equal(total.to_numpy(), expected)
    v[:] = 7  # a loop that ran no step returned a copy of its input, not the input
    if limit == 0:
        np.testing.assert_array_equal(total.to_numpy(), [1.0, -2.0, 0.5])


def test_a_greedy_decoding_loop_over_a_tied_head(session):
    """Each step embeds the last token, takes the head's argmax over the same table (a weight
    the loop's body captures) and writes it at the step's position."""
    vocab, width, steps = 40, 16, 6
    table = np.random.default_rng(3).standard_normal((vocab, width)).astype(np.float32)
    embedding = nn.EmbeddingV2(vocab, width, DType.float32, name="tok")
    head = nn.LMHead(embedding, output="argmax")
    with Graph("decode", input_types=[TensorType(DType.int64, [1])]) as g:
        positions = ops.range(0, steps, 1, dtype=DType.int64, device=DeviceRef.CPU())
        tokens = ops.broadcast_to(ops.constant(-1, DType.int64), [steps])

        def body(i, last, written):
            following = ops.reshape(head(embedding(last)), [1])
            written = ops.where(positions == i, ops.broadcast_to(following, [steps]), written)
            return i + 1, following, written

        start = ops.constant(0, DType.int64)
        *_, written = ops.while_loop([start, g.inputs[0], tokens], lambda i, *_: i < steps, body)
        g.output(written)
    [written] = session.load(g, {"tok": table}).execute(np.array([5], np.int64))
    expected, last = [], 5
    for _ in range(steps):
        last = int(np.argmax(table[last].astype(np.float64) @ table.T.astype(np.float64)))
        expected.append(last)
    np.testing.assert_array_equal(written.to_numpy(), expected)


def test_an_out_of_range_id_inside_a_loop_raises_after_it(session):
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    embedding = nn.EmbeddingV2(4, 3, DType.float32, name="t")
    with Graph("walk", input_types=[TensorType(DType.int64, [1])]) as g:
        zero = ops.constant(0, DType.int64)
        rows = ops.broadcast_to(ops.constant(0.0, DType.float32), [1, 3])
        _, _, total = ops.while_loop(
            [zero, g.inputs[0], rows],
            lambda i, *_: i < 3,
            lambda i, ids, acc: (i + 1, ids + 1, acc + embedding(ids)),
        )
        g.output(total)
    model = session.load(g, {"t": table})
    [total] = model.execute(np.array([0], np.int64))
    np.testing.assert_array_equal(total.to_numpy(), [table[0] + table[1] + table[2]])
    with pytest.raises(OutOfRangeError, match="4"):
        model.execute(np.array([2], np.int64))  # ids 2, 3, then 4 of 4 rows


@pytest.mark.parametrize("flag", [True, False])
def test_cond_runs_the_branch_the_predicate_picks(session, flag):
    types = [TensorType(DType.bool, []), TensorType(DType.float32, [3])]
    with Graph("branch", input_types=types) as g:
        pred, x = g.inputs
        [y] = ops.cond(pred, [x.type], lambda: x * 2, lambda: ops.negate(x))
        assert ops.cond(pred, None, lambda: None, lambda: None) == []
        g.output(y)
    x = np.array([1.0, 2.0, -3.0], np.float32)
    [y] = session.load(g).execute(np.array(flag), x)
    np.testing.assert_array_equal(y.to_numpy(), x * 2 if flag else -x)


def test_a_loop_nested_in_a_branch_captures_through_both(session):
    types = [TensorType(DType.bool, []), TensorType(DType.int32, [])]
    with Graph("nested", input_types=types) as g:
        pred, n = g.inputs

        def count_up():
            zero = ops.constant(0, DType.int32)
            return ops.while_loop(zero, lambda i: i < n, lambda i: i + 1)  # n: two levels out

        [y] = ops.cond(pred, [n.type], count_up, lambda: n * 10)
        g.output(y)
    model = session.load(g)
    assert int(model.execute(np.array(True), np.int32(4))[0].to_numpy()) == 4
    assert int(model.execute(np.array(False), np.int32(4))[0].to_numpy()) == 40


def test_a_body_may_return_python_numbers(session):
    with Graph("reset", input_types=[TensorType(DType.float32, [2])]) as g:
        start = [ops.constant(0, DType.int32), g.inputs[0]]
        count, value = ops.while_loop(start, lambda i, v: i < 2, lambda i, v: (i + 1, 0.5))
        g.output(count, value)
    count, value = session.load(g).execute(np.array([3.0, 4.0], np.float32))
    assert int(count.to_numpy()) == 2
    np.testing.assert_array_equal(value.to_numpy(), [0.5, 0.5])


def test_type_rules():
    with Graph("rules", input_types=[TensorType(DType.int32, [2])]) as g:
        x = g.inputs[0]
        zero = ops.constant(0, DType.int32)
        with pytest.raises(ValueError, match="While loops must have at least one iteration value"):
            ops.while_loop([], lambda: True, lambda: ())
        with pytest.raises(ValueError, match="predicate must be a bool scalar, got int32"):
            ops.while_loop(zero, lambda i: i + 1, lambda i: i)
        with pytest.raises(
            ValueError, match=r"predicate must be a bool scalar, got bool\[Dim\(2\)"
        ):
            ops.while_loop(x, lambda v: v > 0, lambda v: v)
        with pytest.raises(TypeError, match="body returns 2 values; expected 1"):
            ops.while_loop(zero, lambda i: i < 3, lambda i: (i, i))
        with pytest.raises(TypeError, match=r"body: value 0 is float32\[\]; expected int32\[\]"):
            ops.while_loop(zero, lambda i: i < 3, lambda i: ops.cast(i, DType.float32))
        with pytest.raises(NotImplementedError, match="buffers are not supported"):
            ops.while_loop(_buffer(), None, None)
        with pytest.raises(ValueError, match="predicate must be a bool scalar"):
            ops.cond(x > 0, [x.type], lambda: x, lambda: x)
        with pytest.raises(TypeError, match="out_types holds TensorTypes"):
            ops.cond(zero < 1, [DType.int32], lambda: x, lambda: x)
        with pytest.raises(TypeError, match="else branch returns 0 values; expected 1"):
            ops.cond(zero < 1, [x.type], lambda: x, lambda: None)


def _buffer():
    from ember.graph.value import BufferValue

    with Graph("b", input_types=[BufferType(DType.uint8, [1])]) as g:
        value = g.inputs[0]
    assert isinstance(value, BufferValue)
    return value


def test_a_branch_that_returns_an_input_returns_a_copy(session):
    types = [TensorType(DType.bool, []), TensorType(DType.float32, [2])]
    with Graph("same", input_types=types) as g:
        pred, x = g.inputs
        g.output(*ops.cond(pred, [x.type], lambda: x, lambda: x + 1))
    x = np.array([1.0, 2.0], np.float32)
    [y] = session.load(g).execute(np.array(True), x)
    x[:] = 9
    np.testing.assert_array_equal(y.to_numpy(), [1.0, 2.0])


def test_a_graph_takes_no_value_of_another_graph_as_output():
    with Graph("other", input_types=[TensorType(DType.float32, [1])]) as other:
        pass
    with (
        Graph("g") as g,
        pytest.raises(ValueError, match="a value of graph 'other' was used in graph 'g'"),
    ):
        g.output(other.inputs[0])


def test_a_block_reads_sizes_its_outer_graph_binds(session):
    with Graph("sizes", input_types=[TensorType(DType.float32, ["n"])]) as g:
        zero = ops.constant(0, DType.int64)
        [total] = ops.while_loop(
            zero, lambda t: t < 10, lambda t: t + ops.shape_to_tensor(g.inputs[0].shape)[0]
        )
        g.output(total)
    model = session.load(g)
    assert int(model.execute(np.zeros(3, np.float32))[0].to_numpy()) == 12
    assert int(model.execute(np.zeros(4, np.float32))[0].to_numpy()) == 12
    assert int(model.execute(np.zeros(11, np.float32))[0].to_numpy()) == 11


def test_branches_may_each_declare_the_same_checkpoint_tensor(session):
    """MAX's test: each branch makes its own `Weight` of one name; both read one tensor."""
    table = np.arange(50, dtype=np.int64).reshape(5, 10)

    def branch(k: int):
        return lambda: Weight("w", DType.int64, [5, 10], DeviceRef.CPU()) * k

    with Graph("same_name", input_types=[TensorType(DType.bool, [])]) as g:
        out_type = TensorType(DType.int64, [5, 10])
        g.output(*ops.cond(g.inputs[0], [out_type], branch(2), branch(3)))
        with pytest.raises(ValueError, match="a weight named 'w' already exists"):
            Weight("w", DType.int64, [5, 9], DeviceRef.CPU()) * 1  # another declaration
    model = session.load(g, {"w": table})
    np.testing.assert_array_equal(model.execute(np.array(True))[0].to_numpy(), table * 2)
    np.testing.assert_array_equal(model.execute(np.array(False))[0].to_numpy(), table * 3)


def test_an_array_is_one_initial_value(session):
    start = np.arange(6, dtype=np.float32).reshape(2, 3)
    with Graph("array") as g:
        never = ops.constant(False, DType.bool, device=DeviceRef.CPU())
        values = ops.while_loop(start, lambda v: never, lambda v: v * 2)
        assert len(values) == 1 and values[0].shape == [2, 3]
        g.output(*values)
    np.testing.assert_array_equal(session.load(g).execute()[0].to_numpy(), start)


def test_clear_errors_for_callables_and_python_numbers():
    with Graph("errors", input_types=[TensorType(DType.int32, [])]) as g:
        x = g.inputs[0]
        with pytest.raises(TypeError, match=r"predicate is called with 1 value\(s\)"):
            ops.while_loop(x, lambda a, b: a < b, lambda a: a)
        with pytest.raises(TypeError, match="the body must be callable"):
            ops.while_loop(x, lambda a: a < 3, None)
        with pytest.raises(TypeError, match="value 0 is the Python True; expected int32"):
            ops.while_loop(x, lambda a: a < 3, lambda a: True)
        with pytest.raises(TypeError, match=r"value 0, the Python 1\.5, does not fit int32"):
            ops.while_loop(x, lambda a: a < 3, lambda a: 1.5)
        with pytest.raises(TypeError, match="got one TensorType; wrap it in a list"):
            ops.cond(x < 1, x.type, lambda: x, lambda: x)
        with pytest.raises(TypeError, match=r"join conditions with & and \|"):
            ops.while_loop([x, x], lambda a, b: a < 3 and b < 3, lambda a, b: (a, b))


def test_a_branch_on_another_device_than_its_cpu_predicate(backend):
    """MAX's usual `cond`: the predicate on the CPU, the values on another device."""
    from ember.driver import CPU

    session = InferenceSession(devices=[CPU(0), CPU(1)], backend=backend)
    other = DeviceRef.CPU(1)
    types = [TensorType(DType.bool, []), TensorType(DType.float32, [3], other)]
    with Graph("devices", input_types=types) as g:
        flag, x = g.inputs
        [y] = ops.cond(flag, [x.type], lambda: x + 1, lambda: x - 1)
        y.print("y")
        g.output(y)
    model = session.load(g)
    x = np.array([1.0, 2.0, 3.0], np.float32)
    np.testing.assert_array_equal(model.execute(np.array(True), x)[0].to_numpy(), x + 1)
    np.testing.assert_array_equal(model.execute(np.array(False), x)[0].to_numpy(), x - 1)


def test_devices_used_only_inside_a_block_are_checked_at_load():
    with Graph("hidden_device", input_types=[TensorType(DType.float32, [2])]) as g:
        zero = ops.constant(0, DType.int32)
        _, y = ops.while_loop(
            [zero, g.inputs[0]],
            lambda i, v: i < 1,
            lambda i, v: (i + 1, ops.transfer_to(ops.transfer_to(v, DeviceRef.GPU()), v.device)),
        )
        g.output(y)
    with pytest.raises(ValueError, match="places a value on gpu:0"):
        InferenceSession(backend="native").load(g)


def test_a_loop_from_constants_that_looks_up_runs_at_each_execute(session):
    table = np.arange(8, dtype=np.float32).reshape(4, 2)
    embedding = nn.EmbeddingV2(4, 2, DType.float32, name="t")
    with Graph("from_constants") as g:
        start = [ops.constant(0, DType.int64), ops.constant(np.zeros((1, 2), np.float32))]
        _, total = ops.while_loop(
            start,
            lambda i, acc: i < 5,  # ids 0..4 of 4 rows: the last is out of range
            lambda i, acc: (i + 1, acc + embedding(ops.reshape(i, [1]))),
        )
        g.output(total)
    model = session.load(g, {"t": table})  # the loop is not run at load
    with pytest.raises(OutOfRangeError):
        model.execute()


def test_block_errors_name_the_graphs_and_leave_finished_blocks_alone():
    types = [TensorType(DType.bool, []), TensorType(DType.float32, [2])]
    with Graph("g", input_types=types) as g:
        flag, x = g.inputs
        kept = []

        def then():
            kept.append(x * 2)
            return kept[0]

        with pytest.raises(ValueError, match=r"graph 'g\.then' was used in graph 'g\.else'"):
            ops.cond(flag, [x.type], then, lambda: kept[0] + 1)
        block = kept[0].graph
        inputs = len(block.inputs)
        with pytest.raises(ValueError, match="already has its outputs"):
            block.add_node(kept[0].node.op, [x, x], {}, [x.type])
        assert len(block.inputs) == inputs  # nothing captured into the finished block
