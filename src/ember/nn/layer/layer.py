"""MAX's `max.nn.layer.layer` (the module its layer bases are defined in): the same names."""

from ember.nn.layer_hooks import Layer, add_layer_hook, clear_hooks
from ember.nn.module import Module, recursive_named_layers

__all__ = ["Layer", "Module", "add_layer_hook", "clear_hooks", "recursive_named_layers"]
