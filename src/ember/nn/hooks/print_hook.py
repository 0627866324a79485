"""`PrintHook` (MAX's): a layer hook that prints every layer's graph-value inputs and outputs
each time the graph runs (`ops.print`), labelled by where the layer sits in the model, to
compare a port layer by layer with the model it came from.

>>> hook = PrintHook(filter=["model.inner"])  # doctest: +SKIP
>>> hook.name_layers(model)  # before the graph is built  # doctest: +SKIP
>>> graph = Graph("g", model, input_types)  # model.inner-input_0, -output  # doctest: +SKIP
>>> hook.remove()  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ember.graph import TensorValue

from ..layer_hooks import Layer, add_layer_hook, remove_layer_hook
from ..module import Module, recursive_named_layers

__all__ = ["PrintHook"]


class PrintHook:
    """Prints the `TensorValue` inputs (``{name}-input_{n}``, ``{name}-input_{key}``) and
    outputs (``{name}-output``, or ``-output_{n}`` of a list or tuple) of each layer called
    while a graph is built. A layer is named by `name_layers` (``model.encoder.norm``), else
    by its class (``RMSNorm``, ``RMSNorm2``, ...); its second call is ``name(2)``. ``filter``
    keeps the layers of those names. Values print as the session's debug print options say.
    ``export_path`` (MAX writes files there) is not supported: values go to stdout."""

    def __init__(self, export_path: str | None = None, filter: Sequence[str] | None = None):
        if export_path is not None:
            warnings.warn(
                "PrintHook: export_path is not supported; values print to stdout",
                UserWarning,
                stacklevel=2,
            )
        self._names: dict[int, tuple[Any, str]] = {}  # id(layer) -> (layer, name)
        self._calls: Counter[int] = Counter()
        self._per_class: Counter[str] = Counter()
        self._filter = set(filter) if filter else None
        self._step = 0
        self._printed: dict[int, list[str]] = {}
        self._summarized = False
        add_layer_hook(self)

    def add_layer(self, layer: Any, name: str) -> None:
        """Name ``layer`` in the labels."""
        self._names[id(layer)] = (layer, name)

    def name_layers(self, model: Layer) -> None:
        """Name ``model`` and every layer under it by attribute path (``model.layers.0``).

        Raises:
            TypeError: ``model`` is not a `Layer`.
        """
        if not isinstance(model, Layer):
            raise TypeError(f"PrintHook.name_layers takes a Layer, got {type(model).__name__}")
        for layer, name in _walk_layers(model):
            self.add_layer(layer, name)

    def step(self) -> None:
        """Count what is printed from now on as the next step's."""
        self._step += 1

    def __call__(
        self, layer: Any, args: Sequence[Any], kwargs: Mapping[str, Any], outputs: Any
    ) -> None:
        if id(layer) not in self._names:
            kind = type(layer).__name__
            self._per_class[kind] += 1
            count = self._per_class[kind]
            self.add_layer(layer, kind if count == 1 else f"{kind}{count}")
        name = self._names[id(layer)][1]
        self._calls[id(layer)] += 1
        calls = self._calls[id(layer)]
        if self._filter is not None and name not in self._filter:
            return
        label = name if calls == 1 else f"{name}({calls})"
        for n, arg in enumerate(args):
            self._print(f"{label}-input_{n}", arg)
        for key, value in kwargs.items():
            self._print(f"{label}-input_{key}", value)
        if not self._print(f"{label}-output", outputs) and isinstance(outputs, list | tuple):
            for n, out in enumerate(outputs):
                self._print(f"{label}-output_{n}", out)

    def _print(self, label: str, value: Any) -> bool:
        if not isinstance(value, TensorValue):
            return False
        value.print(label)
        self._printed.setdefault(self._step, []).append(label)
        return True

    def summarize(self) -> None:
        """Say how many values each step prints."""
        for step, labels in self._printed.items():
            print(f"Printed {len(labels)} tensors for step {step}.")
        if not any(self._printed.values()):
            print("No tensors exported.")

    def remove(self) -> None:
        """Stop hooking layers (other hooks stay) and print the summary."""
        remove_layer_hook(self)
        self._summarize_once()

    def __del__(self) -> None:  # as MAX's: dropped after clear_hooks(), it still summarizes
        self._summarize_once()

    def _summarize_once(self) -> None:
        if not self._summarized:
            self._summarized = True
            self.summarize()


def _walk_layers(model: Layer) -> Iterator[tuple[Layer, str]]:
    """Each layer under ``model`` once, breadth first, with its attribute path: a `Module`'s
    layers as its weights are named (``layers.0``, not a `LayerList`'s own attribute)."""
    seen = {id(model)}
    queue: deque[tuple[Any, str]] = deque([(model, "model")])
    while queue:
        item, name = queue.popleft()
        if isinstance(item, Module):
            for path, layer in recursive_named_layers(item):
                if path == "" or id(layer) not in seen:
                    seen.add(id(layer))
                    yield layer, f"{name}.{path}" if path else name
            continue
        if isinstance(item, Layer):
            yield item, name
            children = list(vars(item).items())
        elif isinstance(item, list | tuple):
            children = [(str(n), v) for n, v in enumerate(item)]
        elif isinstance(item, dict):
            children = [(str(k), v) for k, v in item.items()]
        else:
            continue
        for key, child in children:
            if isinstance(child, Layer | list | tuple | dict) and id(child) not in seen:
                seen.add(id(child))
                queue.append((child, f"{name}.{key}"))
