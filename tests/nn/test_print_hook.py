"""`PrintHook`: MAX's own tests of it (`test_print_hook.py`, and the filter test of
`test_layer_hook.py`) with the imports renamed, on each backend."""

from __future__ import annotations

import pytest

from ember.driver import Buffer
from ember.dtype import DType
from ember.graph import DeviceRef, Graph, TensorType, TensorValue
from ember.nn.hooks.print_hook import PrintHook
from ember.nn.layer import Layer, clear_hooks

INPUT = TensorType(DType.float32, (2, 4, 6), device=DeviceRef.CPU())


@pytest.fixture(autouse=True)
def clear_hooks_between_tests():
    yield
    clear_hooks()


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


def test_unnamed_print_hook(session, capfd) -> None:
    print_hook = PrintHook()
    g = Graph("nested", OuterLayer(), input_types=[INPUT])
    session.load(g)(Buffer.zeros((2, 4, 6), DType.float32))
    print_hook.remove()
    del print_hook
    out = capfd.readouterr().out
    for name in ("OuterLayer", "InnerLayer", "InnerLayer2"):
        assert f"{name}-input" in out and f"{name}-output" in out
    assert "Printed 6 tensors for step 0" in out


def test_named_print_hook(session, capfd) -> None:
    print_hook = PrintHook()
    layer = OuterLayer()
    print_hook.name_layers(layer)
    g = Graph("nested", layer, input_types=[INPUT])
    session.load(g)(Buffer.zeros((2, 4, 6), DType.float32))
    print_hook.remove()
    del print_hook
    out = capfd.readouterr().out
    for name in ("model", "model.inner_layer_1", "model.inner_layer_2"):
        assert f"{name}-input" in out and f"{name}-output" in out
    assert "Printed 6 tensors for step 0" in out


def test_print_hook_filter(session, capfd) -> None:
    print_hook = PrintHook(filter=["model.inner_layer_2"])
    layer = OuterLayer()
    print_hook.name_layers(layer)
    g = Graph("nested", layer, input_types=[INPUT])
    session.load(g)(Buffer.zeros((2, 4, 6), DType.float32))
    print_hook.remove()
    del print_hook
    out = capfd.readouterr().out
    assert "model.inner_layer_2-input_0" in out and "model.inner_layer_2-output" in out
    assert "model.inner_layer_1" not in out and "model-input" not in out
    assert "Printed 2 tensors for step 0" in out


def test_a_second_call_is_numbered_and_other_hooks_stay(session, capfd) -> None:
    from ember.nn import add_layer_hook

    seen = []
    add_layer_hook(lambda layer, args, kwargs, out: seen.append(layer))
    hook = PrintHook()
    inner = InnerLayer()
    with Graph("twice", input_types=[INPUT]) as g:
        g.output(inner(inner(g.inputs[0])))
    hook.remove()
    assert len(seen) == 2  # the other hook is still there
    session.load(g).execute(Buffer.zeros((2, 4, 6), DType.float32))
    out = capfd.readouterr().out
    assert "InnerLayer-input_0" in out and "InnerLayer(2)-output" in out
    with pytest.raises(TypeError, match="takes a Layer"):
        PrintHook().name_layers(object())
