"""Binding a weights registry to a graph's weights at `load`: every name present, every array
of the declared shape and dtype, and no copy when the array already fits."""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ember.graph import Graph
from ember.weights import Checkpoint, CheckpointError

__all__ = ["COPY_WARNING_BYTES", "bind_weights"]

COPY_WARNING_BYTES = 32 << 20
"""A weight copied at load from this size up draws a warning: a memmap bound through a strided
view would otherwise fill memory without a word."""


def bind_weights(
    graph: Graph, registry: Mapping[str, Any] | None, used: Sequence[str]
) -> dict[str, np.ndarray]:
    """Arrays for the weights named in `used` (those the graph's outputs read), by name.

    Raises:
        ValueError: a weight has no array (the message lists close names), a shape differs, or
            a weight was re-declared after the graph was built (`load_state_dict`'s override).
        CheckpointError: the weight is a checkpoint tensor ember does not read (its reason).
        TypeError: the registry is not a mapping, or an array's dtype differs from its
            weight's (its bytes would be misread).
    Warns:
        UserWarning: names in the registry that the graph does not use, in one line (none for
            a whole `ember.weights.Checkpoint`, whose other tensors other graphs read), and a
            strided array of COPY_WARNING_BYTES or more, which load must copy.
    """
    if registry is not None and not isinstance(registry, Mapping):
        raise TypeError(
            f"weights_registry maps weight names to arrays; got a {type(registry).__name__}"
        )
    whole_checkpoint = isinstance(registry, Checkpoint)
    unreadable = registry.unreadable if whole_checkpoint else {}
    registry = dict(registry or {})
    missing = [name for name in used if name not in registry]
    for name in missing:
        if name in unreadable:  # a tensor the checkpoint holds but ember does not read
            raise CheckpointError(unreadable[name])
    if missing:
        hints = []
        for name in missing:
            close = difflib.get_close_matches(name, registry, n=3)
            hints.append(
                f"{name!r}" + (f" (close: {', '.join(map(repr, close))})" if close else "")
            )
        raise ValueError(
            f"weights_registry has no array for {', '.join(hints)}; "
            f"graph {graph.name!r} reads {sorted(used)}"
        )
    unused = sorted(set(registry) - set(graph.weights))
    if unused and not whole_checkpoint:  # a checkpoint holds far more than one graph reads
        warnings.warn(
            f"weights_registry entries {unused} are not used by graph {graph.name!r}",
            UserWarning,
            stacklevel=3,
        )
    bound = {}
    for name in used:
        weight, value = graph.weights[name]
        built = (value.type, value.node.attrs["encoding"])
        if (weight.type, weight.quantization_encoding) != built:
            raise ValueError(
                f"weight {name!r} was re-declared ({weight.type}, "
                f"{weight.quantization_encoding}) after graph {graph.name!r} was built with it "
                f"as ({built[0]}, {built[1]}); build the graph again"
            )
        array = weight.check_array(registry[name])
        if not array.flags.c_contiguous:
            if array.nbytes >= COPY_WARNING_BYTES:
                warnings.warn(
                    f"weight {name!r}: its array is strided (e.g. a column slice of a memmap), "
                    f"so load copies all {array.nbytes / 2**20:.0f} MB of it into memory; "
                    "bind a C-contiguous array to keep it mapped",
                    UserWarning,
                    stacklevel=3,
                )
            array = np.ascontiguousarray(array)
        bound[name] = array
    return bound
