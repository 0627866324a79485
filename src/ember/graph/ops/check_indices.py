"""`check_indices(indices, size)`: the indices themselves, after checking each is in `[0, size)`.

Layers that split a lookup (one gather per shard) check ids once, up front, with this op.
"""

from __future__ import annotations

import numbers
from typing import Any

from ..graph import current_graph
from ..value import TensorValue
from .gather import index_value

__all__ = ["check_indices"]


def check_indices(indices: Any, size: int) -> TensorValue:
    """At execution, raises IndexError naming the first id outside `[0, size)` and its position.

    Raises:
        TypeError: `indices` is not an integer tensor.
        ValueError: `size` is not a positive int.
    """
    value = index_value("check_indices", indices)
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size <= 0:
        raise ValueError(f"check_indices: size must be a positive int, got {size!r}")
    attrs = {"size": int(size)}
    return current_graph().add_node("check_indices", [value], attrs, [value.type])[0]
