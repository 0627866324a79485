"""`ops.print` and `TensorValue.print` on each backend, in MAX's styles (MAX's own test cases
and strings), inside loops and branches, and the options' errors."""

from __future__ import annotations

import numpy as np
import pytest

from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import DeviceRef, Graph, TensorType, ops

LINE_COMPACT = (
    "test_x_value = tensor([[1.1235, 1.1235, 1.1235, ..., 1.1235, 1.1235, 1.1235]], "
    "dtype=f32, shape=[20])"
)


@pytest.fixture
def printing(backend):
    """A session of its own (print options are a session's), and a model printing its input."""
    session = InferenceSession(backend=backend)

    def print_input(x):
        x.print("test_x_value")
        return x

    graph = Graph("test_print", print_input, [TensorType(DType.float32, ["dim1"])])
    return session, session.load(graph)


def test_compact_is_the_default(printing, capfd):
    _, model = printing
    [out] = model.execute(np.full([20], 1.1234567, np.float32))
    assert LINE_COMPACT in capfd.readouterr().out
    np.testing.assert_array_equal(out.to_numpy(), np.full([20], 1.1234567, np.float32))


def test_full_at_a_precision(printing, capfd):
    session, model = printing
    session.set_debug_print_options("FULL", 2)
    model.execute(np.full([20], 1.1234567, np.float32))
    values = ", ".join(["1.12e+00"] * 20)
    assert f"test_x_value = tensor<20xf32> [{values}]" in capfd.readouterr().out
    session.set_debug_print_options("FULL", 6)
    model.execute(np.full([20], 1.1234567, np.float32))
    values = ", ".join(["1.123457e+00"] * 20)
    assert f"test_x_value = tensor<20xf32> [{values}]" in capfd.readouterr().out


def test_none_prints_nothing(printing, capfd):
    session, model = printing
    session.set_debug_print_options("NONE")
    model.execute(np.full([20], 1.1234567, np.float32))
    assert "test_x_value" not in capfd.readouterr().out


def test_binary_writes_the_bytes(printing, capfd, tmp_path):
    session, model = printing
    session.set_debug_print_options("BINARY", output_directory=tmp_path)
    values = np.random.default_rng(0).uniform(size=[15]).astype(np.float32)
    model.execute(values)
    assert "test_x_value" not in capfd.readouterr().out
    np.testing.assert_array_equal(np.fromfile(tmp_path / "test_x_value", np.float32), values)


def test_options_are_checked():
    session = InferenceSession()
    with pytest.raises(TypeError, match="Invalid debug print style"):
        session.set_debug_print_options("NOTVALID")
    with pytest.raises(TypeError, match="precision must be an int"):
        session.set_debug_print_options("FULL", precision=5.0)
    with pytest.raises(ValueError, match="output directory cannot be empty"):
        session.set_debug_print_options("BINARY")
    with pytest.raises(NotImplementedError, match="use BINARY"):
        session.set_debug_print_options("BINARY_MAX_CHECKPOINT", output_directory="/tmp")
    with Graph("g", input_types=[TensorType(DType.float32, [1])]) as g:
        with pytest.raises(TypeError, match="label must be a str"):
            ops.print(g.inputs[0], label=3)
        with pytest.raises(TypeError, match="expected a TensorValue"):
            ops.print(3)


def test_prints_run_in_order_at_every_execute_inside_branches_and_loops(backend, capfd):
    """MAX's conditional test prints strings in branches that return nothing; a print of a
    constant is not folded away at load."""
    session = InferenceSession(backend=backend)
    with Graph("order", input_types=[TensorType(DType.bool, [])]) as g:
        ops.print("start")
        ops.cond(g.inputs[0], None, lambda: ops.print("then"), lambda: ops.print("else"))
        two = ops.constant(2, DType.int32, device=DeviceRef.CPU())
        two.print("two")

        def body(i):
            i.print("step")
            return i + 1

        ops.while_loop(ops.constant(0, DType.int32), lambda i: i < 2, body)
        g.output(g.inputs[0])
    model = session.load(g)
    for flag in (True, False):
        model.execute(np.array(flag))
        lines = capfd.readouterr().out.splitlines()
        assert lines == [
            "start",
            "then" if flag else "else",
            "two = tensor([[2]], dtype=si32, shape=[])",
            "step = tensor([[0]], dtype=si32, shape=[])",
            "step = tensor([[1]], dtype=si32, shape=[])",
        ]


def test_labels_and_binary_directories_are_checked(tmp_path):
    session = InferenceSession()
    with pytest.raises(ValueError, match="is not a directory"):
        session.set_debug_print_options("BINARY", output_directory=tmp_path / "missing")
    with pytest.raises(ValueError, match="precision must be at least 0"):
        session.set_debug_print_options("FULL", precision=-1)
    with Graph("g", input_types=[TensorType(DType.float32, [1])]) as g:
        for label in ("../escape", "a/b", "", ".."):
            with pytest.raises(ValueError, match="must be usable as a file name"):
                g.inputs[0].print(label)


def test_prints_on_two_devices_keep_the_graphs_order(backend, capfd):
    from ember.driver import CPU

    session = InferenceSession(devices=[CPU(0), CPU(1)], backend=backend)
    with Graph("two", input_types=[TensorType(DType.float32, [2])]) as g:
        ops.print("first")
        moved = ops.transfer_to(g.inputs[0], DeviceRef.CPU(1)) * 2
        moved.print("second")
        ops.print("third")
        g.output(moved)
    session.load(g).execute(np.ones(2, np.float32))
    assert capfd.readouterr().out.splitlines() == [
        "first",
        "second = tensor([[2.0000, 2.0000]], dtype=f32, shape=[2])",
        "third",
    ]
