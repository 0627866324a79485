"""`Module`: a layer that finds its weights and binds arrays to them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ember.graph import Weight

__all__ = ["Module"]


class Module:
    """Base of layers: weights are found among attributes, nested modules and lists of them."""

    def __init__(self) -> None:
        self._bound: dict[str, np.ndarray] = {}

    def raw_state_dict(self) -> dict[str, Weight]:
        """Every weight, keyed by its name (the key the weights registry uses)."""
        return {w.name: w for w in _weights(self, set())}

    def load_state_dict(self, state_dict: Mapping[str, Any], *, strict: bool = True) -> None:
        """Bind an array to each weight, checking names, shapes and dtypes.

        Raises:
            KeyError: a weight has no array, or (when `strict`) an array has no weight.
            TypeError / ValueError: an array's dtype or shape differs from its weight's.
        """
        weights = self.raw_state_dict()
        missing = sorted(set(weights) - set(state_dict))
        if missing:
            raise KeyError(f"no array for weights {missing}; got {sorted(state_dict)}")
        extra = sorted(set(state_dict) - set(weights))
        if strict and extra:
            raise KeyError(f"arrays {extra} match no weight; weights are {sorted(weights)}")
        self._bound = {name: w.check_array(state_dict[name]) for name, w in weights.items()}

    def state_dict(self) -> dict[str, np.ndarray]:
        """The arrays bound by `load_state_dict`, ready for `InferenceSession.load`."""
        if not self._bound and self.raw_state_dict():
            raise ValueError("no arrays are bound yet; call load_state_dict() first")
        return dict(self._bound)


def _weights(obj: Any, seen: set[int]) -> Iterator[Weight]:
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, Weight):
        yield obj
    elif isinstance(obj, Module):
        for value in vars(obj).values():
            yield from _weights(value, seen)
    elif isinstance(obj, list | tuple):
        for item in obj:
            yield from _weights(item, seen)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _weights(item, seen)
