"""`Graph.add_subgraph`, `Module.build_subgraph` and `ops.call` on each backend, against
numpy: MAX's examples, one layer's subgraph called per layer with its own weights, nesting,
and the call's checks."""

from __future__ import annotations

import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.errors import OutOfRangeError
from ember.graph import DeviceRef, Graph, TensorType, Weight, ops

VECTOR = TensorType(DType.float32, [10])


def test_maxs_add_one_example(session):
    with Graph("main", input_types=[VECTOR]) as graph:
        with graph.add_subgraph("add_one", input_types=[VECTOR]) as sub:
            one = ops.constant(1, DType.float32, device=DeviceRef.CPU())
            sub.output(sub.inputs[0] + one)
        twice = ops.call(sub, ops.call(sub, graph.inputs[0])[0])
        graph.output(*twice)
    x = np.arange(10, dtype=np.float32)
    [y] = session.load(graph).execute(x)
    np.testing.assert_array_equal(y.to_numpy(), x + 2)


def test_several_outputs_nesting_and_forward(session):
    with Graph("outer", input_types=[VECTOR]) as outer:

        def middle_body(x):
            inner = outer.add_subgraph("double", lambda v: (v * 2, v * 3), input_types=[VECTOR])
            doubled, tripled = ops.call(inner, x)
            return doubled + tripled

        middle = outer.add_subgraph("middle", middle_body, input_types=[VECTOR])
        outer.output(*ops.call(middle, outer.inputs[0]))
    x = np.linspace(-1, 1, 10, dtype=np.float32)
    [y] = session.load(outer).execute(x)
    np.testing.assert_array_equal(y.to_numpy(), x * 2 + x * 3)


class Scale(nn.Module):
    def __init__(self, bias: Weight) -> None:
        super().__init__()
        self.weight = Weight("weight", DType.float32, (4, 4))
        self.bias = bias

    def __call__(self, x):
        return x @ self.weight.T + self.bias


class Stack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bias = Weight("bias", DType.float32, (4,))  # one for every layer
        self.layers = nn.LayerList([Scale(self.bias) for _ in range(3)])


def test_one_layers_subgraph_called_per_layer_with_its_own_weights(session):
    """MAX's pattern: `build_subgraph` on layer 0 with `weight_prefix="layers.0."`, then a
    call per layer with its prefix. A weight outside the prefix is the same for every call."""
    stack = Stack()
    rng = np.random.default_rng(0)
    arrays = {
        name: rng.standard_normal(w.type.shape.static_dims).astype(np.float32)
        for name, w in stack.raw_state_dict().items()
    }
    assert list(arrays) == ["bias", *(f"layers.{i}.weight" for i in range(3))]
    stack.load_state_dict(arrays)
    with Graph("stack", input_types=[TensorType(DType.float32, [2, 4])]) as g:
        layer = stack.layers[0].build_subgraph("layer", [g.inputs[0].type], "layers.0.")
        h = g.inputs[0]
        for i in range(3):
            [h] = ops.call(layer, h, prefix=f"layers.{i}.")
        g.output(h)
    x = rng.standard_normal((2, 4)).astype(np.float32)
    [y] = session.load(g, stack.state_dict()).execute(x)
    expected = x.astype(np.float64)
    for i in range(3):
        expected = expected @ arrays[f"layers.{i}.weight"].T + arrays["bias"]
    np.testing.assert_allclose(y.to_numpy(), expected, rtol=1e-5, atol=1e-5)


def test_grouped_input_types_reach_the_layer_as_lists(session):
    class Pair(nn.Module):
        def __call__(self, pair, scale):
            return pair[0] * scale + pair[1]

    with Graph("grouped", input_types=[VECTOR] * 3) as g:
        sub = Pair().build_subgraph("pair", [[VECTOR, VECTOR], VECTOR])
        g.output(*ops.call(sub, *g.inputs))
    a, b, c = (np.full(10, v, np.float32) for v in (2.0, 3.0, 5.0))
    [y] = session.load(g).execute(a, b, c)
    np.testing.assert_array_equal(y.to_numpy(), a * c + b)


def test_an_id_out_of_range_inside_a_call_raises(session):
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    embedding = nn.EmbeddingV2(4, 3, DType.float32, name="t")
    with Graph("lookup", input_types=[TensorType(DType.int64, ["n"])]) as g:
        sub = g.add_subgraph("embed", embedding, input_types=[g.inputs[0].type])
        g.output(*ops.call(sub, g.inputs[0]))
    model = session.load(g, {"t": table})
    np.testing.assert_array_equal(model.execute(np.array([3, 0]))[0].to_numpy(), table[[3, 0]])
    with pytest.raises(OutOfRangeError):
        model.execute(np.array([1, 4]))


def test_call_checks_its_arguments():
    int_vector = TensorType(DType.int32, [10])
    with Graph("main", input_types=[int_vector]) as g:
        sub = g.add_subgraph("add_one", lambda x: x + 1.0, input_types=[VECTOR])
        with pytest.raises(ValueError, match="argument 0 of add_one has the wrong type"):
            ops.call(sub, g.inputs[0])
        with pytest.raises(ValueError, match="Expected 1 args to call to add_one, got 2"):
            ops.call(sub, g.inputs[0], g.inputs[0])
        with pytest.raises(TypeError, match="call takes a subgraph"):
            ops.call(g, g.inputs[0])
        with pytest.raises(TypeError, match="prefix must be a str"):
            ops.call(sub, g.inputs[0], prefix=1)
        unfinished = g.add_subgraph("unfinished", input_types=[VECTOR])
        with pytest.raises(ValueError, match="has no outputs"):
            ops.call(unfinished, g.inputs[0])
        with pytest.raises(NotImplementedError, match="no MLIR graphs"):
            g.add_subgraph("loaded", path="model.mlir")


def test_a_prefix_that_names_no_weight_leaves_the_weights_shared(session):
    """As MAX's: a weight outside `weight_prefix` is the same in every call, and a prefix
    given to a call of a subgraph without placeholders reads nothing."""
    layer = Scale(Weight("bias", DType.float32, (4,)))
    with Graph("g", input_types=[TensorType(DType.float32, [2, 4])]) as g:
        with pytest.warns(UserWarning, match=r"begins none of the layer's weight names"):
            sub = layer.build_subgraph("layer", [g.inputs[0].type], "layers.0.")
        plain = layer.build_subgraph("plain", [g.inputs[0].type])
        [first] = ops.call(sub, g.inputs[0], prefix="layers.1.")
        [second] = ops.call(plain, first, prefix="layers.2.")
        g.output(second)
    weight = np.arange(16, dtype=np.float32).reshape(4, 4) / 8
    bias = np.array([1, -2, 3, 0.5], np.float32)
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    model = session.load(g, weights_registry={"weight": weight, "bias": bias})
    want = ((x @ weight.T + bias) @ weight.T + bias).astype(np.float32)
    np.testing.assert_allclose(model.execute(x)[0].to_numpy(), want, rtol=1e-6)


def test_a_subgraph_that_only_prints(session, capfd):
    with Graph("log", input_types=[VECTOR]) as g:
        sub = g.add_subgraph("log", lambda v: v.print("v"), input_types=[VECTOR])
        assert ops.call(sub, g.inputs[0]) == []
        g.output(g.inputs[0])
    session.load(g).execute(np.zeros(10, np.float32))
    assert "v = tensor([[0.0000, 0.0000, 0.0000, ..., 0.0000" in capfd.readouterr().out


def test_a_subgraph_with_placeholders_needs_a_prefix():
    stack = Stack()
    arrays = {name: np.zeros(w.type.shape.static_dims, np.float32)
              for name, w in stack.raw_state_dict().items()}  # fmt: skip
    stack.load_state_dict(arrays)  # the weights' full names: layers.0.weight, ...
    with Graph("g", input_types=[TensorType(DType.float32, [2, 4])]) as g:
        layer = stack.layers[0].build_subgraph("layer", [g.inputs[0].type], "layers.0.")
        with pytest.raises(ValueError, match="reads placeholder weights"):
            ops.call(layer, g.inputs[0])
