"""`slice_tensor(x, index)`: basic indexing with ints, static slices and `...`.

>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.float32, ["n", 10, 4])]) as g:
...     y = slice_tensor(g.inputs[0], (..., slice(2, 8, 2), -1))
>>> y.shape
[Dim('n'), Dim(3)]
"""

from __future__ import annotations

import numbers
from typing import Any

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..dim import StaticDim
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .constant import as_value

__all__ = ["SLICE", "slice_tensor"]

SLICE = Op("slice", may_alias=True)


def slice_tensor(x: Any, index: Any) -> TensorValue:
    """Raises:
    TypeError: an index item is not an int, a slice of ints, or `...`.
    IndexError: an int is out of range of a static dim.
    ValueError: a bounded slice of a symbolic dim (its length is unknown), a zero step.
    """
    value = as_value(x)
    items = _expand(value.rank, index if isinstance(index, tuple) else (index,))
    dims, normalized = [], []
    for axis, (item, dim) in enumerate(zip(items, value.shape, strict=True)):
        if isinstance(item, numbers.Integral) and not isinstance(item, bool):
            if isinstance(dim, StaticDim) and not -int(dim) <= item < int(dim):
                raise IndexError(f"slice: index {item} is out of range for axis {axis} of {dim}")
            normalized.append(int(item))
            continue
        if not isinstance(item, slice) or not all(
            v is None or (isinstance(v, numbers.Integral) and not isinstance(v, bool))
            for v in (item.start, item.stop, item.step)
        ):
            raise TypeError(f"slice: expected ints, slices of ints or ..., got {item!r}")
        if item.step == 0:
            raise ValueError("slice: the step cannot be zero")
        if isinstance(dim, StaticDim):
            dims.append(StaticDim(len(range(int(dim))[item])))
        elif item == slice(None):
            dims.append(dim)
        else:
            raise ValueError(
                f"slice: axis {axis} is the symbolic dim {dim!r}; a bounded slice of it has an "
                "unknown length (slice static dims, or take the whole axis)"
            )
        normalized.append(item)
    result = TensorType(value.dtype, dims, value.device)
    return current_graph().add_node(SLICE, [value], {"index": tuple(normalized)}, [result])[0]


def _expand(rank: int, items: tuple) -> list:
    if sum(item is Ellipsis for item in items) > 1:
        raise IndexError("slice: an index can only have a single ellipsis ('...')")
    if len(items) - (Ellipsis in items) > rank:
        raise IndexError(f"slice: too many indices ({len(items)}) for a value of rank {rank}")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        fill = rank - (len(items) - 1)
        items = items[:at] + (slice(None),) * fill + items[at + 1 :]
    return list(items) + [slice(None)] * (rank - len(items))
