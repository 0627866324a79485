"""`Layer` and layer hooks (MAX's): functions called after each layer's `__call__` with the
layer, its arguments and its outputs, while a graph is built. A hook may return new outputs,
which replace the layer's (to trace, print or patch a model without editing it).

>>> from ember.dtype import DType
>>> from ember.graph import Graph, TensorType
>>> class Double(Layer):
...     def __call__(self, x):
...         return x * 2
>>> seen = []
>>> add_layer_hook(lambda layer, args, kwargs, out: seen.append(type(layer).__name__))
>>> graph = Graph("g", Double(), [TensorType(DType.float32, [4])])
>>> clear_hooks(); seen
['Double']
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Layer", "LayerHook", "add_layer_hook", "clear_hooks", "remove_layer_hook"]

LayerHook = Callable[[Any, tuple[Any, ...], dict[str, Any], Any], Any]
"""``hook(layer, args, kwargs, outputs)``: None keeps the outputs; anything else replaces them."""

_HOOKS: list[LayerHook] = []


def add_layer_hook(fn: LayerHook) -> None:
    """Call ``fn`` after every layer's `__call__` from now on, after the hooks added before it
    (each sees the outputs the one before returned).

    Raises:
        TypeError: ``fn`` is not callable.
    """
    if not callable(fn):
        raise TypeError(f"add_layer_hook takes a callable, got {fn!r}")
    _HOOKS.append(fn)


def remove_layer_hook(fn: LayerHook) -> None:
    """Stop calling ``fn`` (each time it was added); the other hooks stay."""
    _HOOKS[:] = [hook for hook in _HOOKS if hook is not fn]


def clear_hooks() -> None:
    """Remove every layer hook."""
    _HOOKS.clear()


class Layer:
    """A layer whose `__call__` runs the layer hooks; `Module` (and every ember layer) is one.
    A subclass's own `__call__` is wrapped when the class is made."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        call = cls.__dict__.get("__call__")
        if call is not None:
            cls.__call__ = _with_hooks(call)  # type: ignore[method-assign]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} defines no __call__")


_CALLING = threading.local()
"""The layers whose wrapped call is running on this thread: a subclass's call that runs its
base's (``super().__call__``) runs the hooks once, for the outer call."""


def _with_hooks(call: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call)
    def called(layer: Any, *args: Any, **kwargs: Any) -> Any:
        running = _CALLING.__dict__.setdefault("layers", set())
        if id(layer) in running:
            return call(layer, *args, **kwargs)
        running.add(id(layer))
        try:
            outputs = call(layer, *args, **kwargs)
        finally:
            running.discard(id(layer))
        if _HOOKS:  # arguments as the signature binds them: positional ones by position
            bound = inspect.signature(call).bind(layer, *args, **kwargs)
            for hook in list(_HOOKS):
                replaced = hook(layer, bound.args[1:], bound.kwargs, outputs)
                if replaced is not None:
                    outputs = replaced
        return outputs

    return called
