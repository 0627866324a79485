"""`forward_sequential_layers` (MAX's): a stack run directly or through shared subgraphs gives
the same results, each layer reading its own weights, on each backend."""

from __future__ import annotations

import numpy as np
import pytest

from ember import nn
from ember.dtype import DType
from ember.graph import DeviceRef, Graph, TensorType, Weight, ops
from ember.nn.transformer import forward_sequential_layers

ROW = TensorType(DType.float32, [2, 4], DeviceRef.CPU())


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = Weight("weight", DType.float32, (4, 4))

    def __call__(self, x, step):
        return [ops.tanh(x @ self.weight.T) + step]


class Stack(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.layers = nn.LayerList([Block() for _ in range(n)])


@pytest.mark.parametrize("groups", [None, [[0, 1, 2, 3]], [[0, 2], [1]], [[1, 2]]])
def test_direct_and_subgraph_calls_agree_with_numpy(session, groups):
    stack = Stack(4)
    rng = np.random.default_rng(1)
    arrays = {
        f"layers.{i}.weight": rng.standard_normal((4, 4)).astype(np.float32) for i in range(4)
    }
    stack.load_state_dict(arrays)
    seen = []
    with Graph("stack", input_types=[ROW]) as g:
        one = ops.constant(np.ones((), np.float32), DType.float32, DeviceRef.CPU())
        result = forward_sequential_layers(
            list(stack.layers),
            inputs_for_layer=lambda i, h: [h[0], one],
            initial_hidden_states=[g.inputs[0]],
            on_layer_output=lambda i, h: seen.append(i),
            subgraph_layer_groups=groups,
            weight_prefix_for_layer=lambda i: f"layers.{i}.",
        )
        g.output(*result)
    assert seen == [0, 1, 2, 3]
    x = rng.standard_normal((2, 4)).astype(np.float32)
    want = x.astype(np.float64)
    for i in range(4):
        want = np.tanh(want @ arrays[f"layers.{i}.weight"].T.astype(np.float64)) + 1
    got = session.load(g, weights_registry=stack.state_dict()).execute(x)[0].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_refusals():
    layers = [Block(), Block()]
    with Graph("g", input_types=[ROW]) as g:
        common = {"inputs_for_layer": lambda i, h: h, "initial_hidden_states": [g.inputs[0]]}
        with pytest.raises(ValueError, match="Layer index 2 is out of range for 2 layers"):
            forward_sequential_layers(layers, subgraph_layer_groups=[[2]], **common)
        with pytest.raises(ValueError, match="weight_prefix_for_layer"):
            forward_sequential_layers(layers, subgraph_layer_groups=[[0]], **common)
        with pytest.raises(ValueError, match="in two subgraph groups"):
            forward_sequential_layers(
                layers,
                subgraph_layer_groups=[[0], [0]],
                weight_prefix_for_layer=str,
                **common,
            )
