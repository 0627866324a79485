"""`check_indices(indices, size)`: the indices, each checked to lie in `[0, size)`.

Layers that split a lookup (one gather per shard) apply their out-of-range policy once, up
front, with this op, so a bad id is treated exactly as an unsplit lookup treats it.
"""

from __future__ import annotations

import numbers
from typing import Any, Literal

from ..graph import current_graph
from ..op import Op
from ..value import TensorValue
from .gather import index_value

__all__ = ["CHECK_INDICES", "check_indices"]

CHECK_INDICES = Op("check_indices", may_alias=True)


def check_indices(
    indices: Any, size: int, out_of_range: Literal["error", "clamp"] = "error"
) -> TensorValue:
    """With "error", execution raises IndexError naming the first id outside `[0, size)` and
    its position; with "clamp", such ids become 0 or `size - 1` (compared in the ids' own
    type, so huge unsigned ids clamp high).

    Raises:
        TypeError: `indices` is not an integer tensor.
        ValueError: `size` is not a positive int, or `out_of_range` is another policy.
    """
    value = index_value("check_indices", indices)
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size <= 0:
        raise ValueError(f"check_indices: size must be a positive int, got {size!r}")
    if out_of_range not in ("error", "clamp"):
        raise ValueError(
            f"check_indices: out_of_range must be 'error' or 'clamp', got {out_of_range!r}"
        )
    attrs = {"size": int(size), "out_of_range": out_of_range}
    return current_graph().add_node(CHECK_INDICES, [value], attrs, [value.type])[0]
