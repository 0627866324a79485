"""`forward_sequential_layers` (MAX's `max.nn.transformer`): a stack of layers run in order,
each on what the one before returned, where layers of one group share one subgraph (built
from the group's first layer, called once per layer with that layer's weight prefix).

>>> from ember.dtype import DType
>>> from ember.graph import Graph, TensorType
>>> class Double(Module):
...     def __call__(self, x):
...         return x * 2
>>> with Graph("g", input_types=[TensorType(DType.float32, [4])]) as g:
...     [y] = forward_sequential_layers(
...         [Double(), Double()], inputs_for_layer=lambda i, h: h,
...         initial_hidden_states=[g.inputs[0]], subgraph_layer_groups=[[0, 1]],
...         weight_prefix_for_layer=lambda i: f"layers.{i}.")
>>> y.type == g.inputs[0].type
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ember.graph import TensorValue, ops

from .module import Module

__all__ = ["forward_sequential_layers"]


def forward_sequential_layers(
    layers: Sequence[Module],
    *,
    inputs_for_layer: Callable[[int, list[TensorValue]], list[Any]],
    initial_hidden_states: list[TensorValue],
    on_layer_output: Callable[[int, list[TensorValue]], None] | None = None,
    subgraph_layer_groups: list[list[int]] | None = None,
    name_for_subgraph: Callable[[int], str] = lambda i: f"transformer_block_{i}",
    weight_prefix_for_layer: Callable[[int], str] | None = None,
) -> list[TensorValue]:
    """The last layer's outputs (a list). Layer ``i`` is called on
    ``inputs_for_layer(i, hidden)`` (values, or lists of values a layer takes as one argument);
    ``on_layer_output(i, outputs)`` sees each layer's. A layer in none of
    ``subgraph_layer_groups`` is called directly; the layers of a group must take inputs of
    the same types.

    Raises:
        ValueError: a group names a layer past the stack, a layer is in two groups, or groups
            are given without ``weight_prefix_for_layer``.
    """
    hidden = list(initial_hidden_states)
    group_of: dict[int, int] = {}
    for group, members in enumerate(subgraph_layer_groups or []):
        for index in members:
            if not 0 <= index < len(layers):
                raise ValueError(f"Layer index {index} is out of range for {len(layers)} layers")
            if index in group_of:
                raise ValueError(f"layer {index} is in two subgraph groups")
            group_of[index] = group
    if group_of and weight_prefix_for_layer is None:
        raise ValueError("`weight_prefix_for_layer` is required when using subgraphs")
    subgraphs: dict[int, Any] = {}
    for index, layer in enumerate(layers):
        values = inputs_for_layer(index, hidden)
        if index not in group_of:
            hidden = _as_list(layer(*values))
        else:
            prefix = weight_prefix_for_layer(index)  # type: ignore[misc]
            group = group_of[index]
            if group not in subgraphs:
                types = [[v.type for v in x] if isinstance(x, list | tuple) else x.type
                         for x in values]  # fmt: skip
                subgraphs[group] = layer.build_subgraph(name_for_subgraph(group), types, prefix)
            flat = [v for x in values for v in (x if isinstance(x, list | tuple) else [x])]
            hidden = list(ops.call(subgraphs[group], *flat, prefix=prefix))
        if on_layer_output is not None:
            on_layer_output(index, hidden)
    return hidden


def _as_list(result: Any) -> list[Any]:
    return list(result) if isinstance(result, list | tuple) else [result]
