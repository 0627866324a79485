"""`LayerList` and `Sequential`: layers held in order, named by position (`layers.0.weight`).

>>> import numpy as np
>>> from ember.dtype import DType
>>> from ember.engine import InferenceSession
>>> from ember.graph import Graph, TensorType
>>> from ember.nn import RMSNorm
>>> stack = Sequential([RMSNorm(8, DType.float32, name="norm") for _ in range(2)])
>>> list(stack.raw_state_dict())
['0.norm.weight', '1.norm.weight']
>>> stack.load_state_dict({"0.norm.weight": np.full(8, 2, np.float32),
...                        "1.norm.weight": np.full(8, 3, np.float32)})
>>> with Graph("g", input_types=[TensorType(DType.float32, [1, 8])]) as g:
...     g.output(stack(g.inputs[0]))  # the weights now have their full names
>>> model = InferenceSession().load(g, stack.state_dict())
>>> model.execute(np.ones((1, 8), np.float32))[0].to_numpy().round(3)
array([[3., 3., 3., 3., 3., 3., 3., 3.]], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .module import Module

__all__ = ["LayerList", "Sequential"]


class LayerList(Module):
    """A list of layers; called, it calls each on the last one's output (the first on the
    arguments)."""

    def __init__(self, layers: Iterable[Any]) -> None:
        super().__init__()
        self.layers = list(layers)

    @property
    def sublayers(self) -> dict[str, Module]:
        """The modules in the list, by position."""
        return {str(i): layer for i, layer in enumerate(self.layers) if isinstance(layer, Module)}

    def _put(self, path: str, module: Module) -> None:
        self.layers[int(path)] = module

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Any:
        return self.layers[i]

    def __setitem__(self, i: int, layer: Any) -> None:
        self.layers[i] = layer

    def __delitem__(self, i: int) -> None:
        del self.layers[i]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.layers)

    def insert(self, i: int, layer: Any) -> None:
        self.layers.insert(i, layer)

    def append(self, layer: Any) -> None:
        self.layers.append(layer)

    def extend(self, layers: Iterable[Any]) -> None:
        self.layers.extend(layers)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.layers:
            raise ValueError(f"{type(self).__name__} has no layers to call")
        x = self.layers[0](*args, **kwargs)
        for layer in self.layers[1:]:
            x = layer(x)
        return x


class Sequential(LayerList):
    """Layers applied in order: the first takes the call's arguments, each next one the
    output before it. A `LayerList` under MAX's other name for it."""
