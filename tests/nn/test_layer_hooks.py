"""Layer hooks, `PrintHook` and `Identity`: MAX's own tests of them (`test_layer_hook.py`,
`test_print_hook.py`, `test_identity.py`) with the imports renamed and its mocks made plain
recorders, plus hooks on ember's own layers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ember import nn
from ember.driver import Buffer
from ember.dtype import DType
from ember.graph import DeviceRef, Graph, TensorType, TensorValue, ops
from ember.nn.hooks.print_hook import PrintHook
from ember.nn.layer import Layer, add_layer_hook, clear_hooks


@pytest.fixture(autouse=True)
def clear_hooks_between_tests():
    yield
    clear_hooks()


class Recorder:
    """A hook that records its calls and returns ``reply(outputs)``."""

    def __init__(self, reply=lambda outputs: outputs) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.reply = reply

    def __call__(self, layer, args, kwargs, outputs):
        self.calls.append((layer, args, kwargs, outputs))
        return self.reply(outputs)


class OuterLayer(Layer):
    def __init__(self) -> None:
        self.inner_layer_1 = InnerLayer()
        self.inner_layer_2 = InnerLayer()

    def __call__(self, input: TensorValue) -> TensorValue:
        cast_input = input.cast(DType.int32)
        return self.inner_layer_2(self.inner_layer_1(cast_input))


class InnerLayer(Layer):
    def __call__(self, input: TensorValue) -> TensorValue:
        return input.transpose(0, 1)


INPUT = TensorType(DType.int64, shape=[5, "dim1", "dim2"], device=DeviceRef.CPU())
PRINTED = TensorType(DType.float32, (2, 4, 6), device=DeviceRef.CPU())


def test_hook_nested_layers() -> None:
    outer_layer = OuterLayer()
    hook = Recorder()
    add_layer_hook(hook)
    g = Graph("test_hook", outer_layer, input_types=[INPUT])
    assert len(hook.calls) == 3

    layer1, args1, kwargs1, outputs1 = hook.calls[0]
    assert layer1 is outer_layer.inner_layer_1
    assert len(args1) == 1 and not kwargs1
    assert args1[0].type == TensorType(DType.int32, [5, "dim1", "dim2"], DeviceRef.CPU())
    assert outputs1.type == TensorType(DType.int32, ["dim1", 5, "dim2"], DeviceRef.CPU())

    layer2, args2, _, outputs2 = hook.calls[1]
    assert layer2 is outer_layer.inner_layer_2 and args2[0] is outputs1
    assert outputs2.type == TensorType(DType.int32, [5, "dim1", "dim2"], DeviceRef.CPU())

    layer3, args3, _, outputs3 = hook.calls[2]
    assert layer3 is outer_layer and args3[0] is g.inputs[0] and outputs3 is outputs2


def test_hook_nested_hooks_returns() -> None:
    inner_layer = InnerLayer()
    hook = Recorder(lambda out: ops.tile(out, [1, 2, 1]))
    hook2 = Recorder(lambda out: ops.cast(out, DType.float32))
    add_layer_hook(hook)
    add_layer_hook(hook2)
    with Graph("test_hook", input_types=[INPUT]) as g:
        output = inner_layer(g.inputs[0].tensor)
        g.output(output)
    assert output.type == TensorType(DType.float32, ["dim1", 10, "dim2"], DeviceRef.CPU())
    assert len(hook.calls) == len(hook2.calls) == 1
    assert hook.calls[0][3].type == TensorType(DType.int64, ["dim1", 5, "dim2"], DeviceRef.CPU())
    assert hook2.calls[0][3].type == TensorType(DType.int64, ["dim1", 10, "dim2"], DeviceRef.CPU())


def test_clear_hooks() -> None:
    hook, hook2 = Recorder(), Recorder()
    add_layer_hook(hook)
    add_layer_hook(hook2)
    clear_hooks()
    Graph("test_hook", OuterLayer(), input_types=[INPUT])
    assert hook.calls == hook2.calls == []


class LayerWithArgsKwargs(Layer):
    def __call__(
        self,
        arg1: TensorValue,
        arg2: TensorValue,
        *args: Any,
        kwarg1: str = "1",
        kwarg2: str = "3",
        **kwargs: Any,
    ) -> TensorValue:
        return arg1


def test_hook_args_kwargs() -> None:
    hook = Recorder()
    add_layer_hook(hook)
    g = Graph(
        "test_hook",
        LayerWithArgsKwargs(),
        [INPUT],
        kwarg2="kwarg2 value",
        arg2="arg2 value",
    )
    _, args, kwargs, _ = hook.calls[0]
    assert len(args) == 2 and args[0] is g.inputs[0] and args[1] == "arg2 value"
    assert kwargs == {"kwarg2": "kwarg2 value"}


def test_hook_many_args_kwargs() -> None:
    hook = Recorder()
    add_layer_hook(hook)
    g = Graph(
        "test_hook",
        LayerWithArgsKwargs(),
        [INPUT],
        None,  # MAX's path
        "arg2 value",
        "arg3 value",
        "arg4 value",
        kwarg3="kwarg3 value",
        kwarg2="kwarg2 value",
        kwarg1="kwarg1 value",
    )
    _, args, kwargs, _ = hook.calls[0]
    assert args[0] is g.inputs[0]
    assert args[1:] == ("arg2 value", "arg3 value", "arg4 value")
    assert kwargs == {"kwarg1": "kwarg1 value", "kwarg2": "kwarg2 value", "kwarg3": "kwarg3 value"}


def test_hooks_see_embers_own_layers_and_can_replace_their_outputs(session) -> None:
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    embedding = nn.EmbeddingV2(4, 3, DType.float32, DeviceRef.CPU())
    hook = Recorder(lambda out: out * 10)
    add_layer_hook(hook)
    ids = TensorType(DType.int64, [2], DeviceRef.CPU())
    graph = Graph("lookup", embedding, input_types=[ids])
    assert [type(call[0]) for call in hook.calls] == [nn.EmbeddingV2]
    got = session.load(graph, weights_registry={"weight": table}).execute(np.array([3, 1]))
    np.testing.assert_array_equal(got[0].to_numpy(), table[[3, 1]] * 10)


def test_a_hook_must_be_callable() -> None:
    with pytest.raises(TypeError, match="takes a callable"):
        add_layer_hook("print")


def test_identity_passthrough(session) -> None:
    input_types = [TensorType(DType.float32, shape=(2, 3), device=DeviceRef.CPU())]
    graph = Graph("test_identity_passthrough", input_types=input_types, forward=nn.Identity())
    assert graph.output_types == input_types
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(session.load(graph).execute(x)[0].to_numpy(), x)


def _printed(session, capfd, print_hook: PrintHook, layer: Layer) -> str:
    """What running ``layer``'s graph prints, with the summary of ``print_hook`` removed."""
    g = Graph("nested", layer, input_types=[PRINTED])
    session.load(g)(Buffer.zeros((2, 4, 6), DType.float32))
    print_hook.remove()
    return capfd.readouterr().out


def test_unnamed_print_hook(session, capfd) -> None:
    out = _printed(session, capfd, PrintHook(), OuterLayer())
    for name in ("OuterLayer", "InnerLayer", "InnerLayer2"):
        assert f"{name}-input" in out and f"{name}-output" in out
    assert "Printed 6 tensors for step 0" in out


def test_named_print_hook(session, capfd) -> None:
    print_hook, layer = PrintHook(), OuterLayer()
    print_hook.name_layers(layer)
    out = _printed(session, capfd, print_hook, layer)
    for name in ("model", "model.inner_layer_1", "model.inner_layer_2"):
        assert f"{name}-input" in out and f"{name}-output" in out
    assert "Printed 6 tensors for step 0" in out


def test_print_hook_filter(session, capfd) -> None:
    print_hook, layer = PrintHook(filter=["model.inner_layer_2"]), OuterLayer()
    print_hook.name_layers(layer)
    out = _printed(session, capfd, print_hook, layer)
    assert "model.inner_layer_2-input_0" in out and "model.inner_layer_2-output" in out
    assert "model.inner_layer_1" not in out and "model-input" not in out
    assert "Printed 2 tensors for step 0" in out


def test_a_second_call_is_numbered_and_other_hooks_stay(session, capfd) -> None:
    seen = []
    add_layer_hook(lambda layer, args, kwargs, out: seen.append(layer))
    hook = PrintHook()
    inner = InnerLayer()
    with Graph("twice", input_types=[PRINTED]) as g:
        g.output(inner(inner(g.inputs[0])))
    hook.remove()
    assert len(seen) == 2  # the other hook is still there
    session.load(g).execute(Buffer.zeros((2, 4, 6), DType.float32))
    out = capfd.readouterr().out
    assert "InnerLayer-input_0" in out and "InnerLayer(2)-output" in out
    with pytest.raises(TypeError, match="takes a Layer"):
        PrintHook().name_layers(object())


def test_a_call_through_super_runs_the_hooks_once(session) -> None:
    hook = Recorder(lambda out: out * 10)
    add_layer_hook(hook)
    embedding = nn.Embedding(4, 3, DType.float32, DeviceRef.CPU())  # calls EmbeddingV2's call
    graph = Graph("lookup", embedding, input_types=[TensorType(DType.int64, [1], DeviceRef.CPU())])
    assert len(hook.calls) == 1
    got = session.load(graph, {"weight": np.ones((4, 3), np.float32)}).execute(np.array([2]))
    assert got[0].to_numpy().tolist() == [[10.0, 10.0, 10.0]]


def test_print_hook_names_a_layer_lists_layers_by_position(session, capfd) -> None:
    class Stack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.LayerList([nn.Identity(), nn.Identity()])

        def __call__(self, x):
            return self.layers[1](self.layers[0](x))

    print_hook, stack = PrintHook(filter=["model.layers.1"]), Stack()
    print_hook.name_layers(stack)
    out = _printed(session, capfd, print_hook, stack)
    assert "model.layers.1-output" in out and "model.layers.0" not in out
