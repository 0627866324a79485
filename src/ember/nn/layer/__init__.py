"""MAX's `max.nn.layer`, where MAX's model code imports its layer bases from: the same names
as `ember.nn`."""

from ember.nn.layer_hooks import Layer, add_layer_hook, clear_hooks
from ember.nn.layer_list import LayerList
from ember.nn.module import Module, recursive_named_layers

__all__ = [
    "Layer",
    "LayerList",
    "Module",
    "add_layer_hook",
    "clear_hooks",
    "recursive_named_layers",
]
