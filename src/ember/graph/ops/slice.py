"""`slice_tensor(x, index)`: basic indexing with ints, slices, `...` and `None` (a new axis of
size 1, an `unsqueeze` after the slice). A slice's ends may be dims the graph's inputs bind
(`table[start:start + n]`, `table[start:]`), checked at each execution.

>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.float32, ["n", 10, 4])]) as g:
...     y = slice_tensor(g.inputs[0], (..., slice(2, 8, 2), -1))
...     offsets = slice_tensor(g.inputs[0], slice(1, None))
...     z = g.inputs[0][:, None, 0, None]
>>> y.shape, offsets.shape[0], z.shape
([Dim('n'), Dim(3)], Dim(n - 1), [Dim('n'), Dim(1), Dim(1), Dim(4)])
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..dim import Dim, StaticDim
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .constant import as_value
from .dim_binders import dim_binders
from .squeeze import unsqueeze

__all__ = ["SLICE", "concrete_index", "slice_tensor", "slice_too_long"]

SLICE = Op("slice", may_alias=True)


def slice_tensor(x: Any, index: Any) -> TensorValue:
    """A symbolic dim `n` takes slices whose ends count from the same end or from both:
    `[s:]`, `[:-e]` and `[s:-e]` (length `n - s - e`, as MAX's `offsets[1:]`), `[s:t]`,
    `[-s:]` and `[-s:-t]` (a static length), each with any positive step (`[::2]`: length
    `(n + 1) // 2`), and `[::-k]`; executing with an axis shorter than such a slice needs is
    an error, never a shorter result.

    `index` is one item or a tuple or list of them (MAX takes any sequence).

    Raises:
        TypeError: an index item is not an int, a slice of ints, `...` or None.
        IndexError: an int is out of range of a static dim.
        ValueError: a zero step; a slice of a symbolic dim whose start counts from the end
            and stop from the start, or of a negative step with ends; dim ends that do not
            count from the start, or with a step other than 1; a dim end no input binds.
    """
    value = as_value(x)
    items = tuple(index) if isinstance(index, tuple | list) else (index,)
    if any(item is None for item in items):
        result = slice_tensor(value, tuple(item for item in items if item is not None))
        for axis in _new_axes(value.rank, items):
            result = unsqueeze(result, axis)
        return result
    items = [_static_ends(item) for item in _expand(value.rank, items)]
    dims, normalized, needs, symbols = [], [], {}, set()
    for axis, (item, dim) in enumerate(zip(items, value.shape, strict=True)):
        if _has_dim_ends(item):
            dims.append(_dim_slice(axis, item, dim))
            symbols |= Dim(item.start or 0).symbols() | Dim(item.stop or 0).symbols()
            normalized.append(item)
            continue
        if isinstance(item, numbers.Integral) and not isinstance(item, bool):
            if isinstance(dim, StaticDim) and not -int(dim) <= item < int(dim):
                raise IndexError(f"slice: index {item} is out of range for axis {axis} of {dim}")
            if not isinstance(dim, StaticDim):  # checked at execution, as a slice's end is
                needs[axis] = int(item) + 1 if item >= 0 else -int(item)
            normalized.append(int(item))
            continue
        if not isinstance(item, slice) or not all(
            v is None or (isinstance(v, numbers.Integral) and not isinstance(v, bool))
            for v in (item.start, item.stop, item.step)
        ):
            raise TypeError(f"slice: expected ints, slices of ints, ... or None, got {item!r}")
        if item.step == 0:
            raise ValueError("slice: the step cannot be zero")
        if isinstance(dim, StaticDim):
            taken = range(int(dim))[item]
            dims.append(StaticDim(len(taken)))
            item = _plain(taken)
        elif item == slice(None):
            dims.append(dim)
        else:
            length, needs[axis] = _symbolic_slice(axis, dim, item)
            dims.append(length)
        normalized.append(item)
    result = TensorType(value.dtype, dims, value.device)
    attrs = {"index": tuple(normalized), "needs": needs, "dim_ends": bool(symbols)}
    graph = current_graph()
    binders = dim_binders("slice", graph, symbols, value.device, "its ends") if symbols else []
    return graph.add_node(SLICE, [value, *binders], attrs, [result])[0]


def concrete_index(index: tuple, bindings: Mapping[str, int], shape: tuple) -> tuple:
    """`index` with its dim ends evaluated for an execution (each backend's lowering calls it).

    Raises:
        ValueError: ends that do not lie in order within their axis at this execution.
    """
    concrete = []
    for axis, item in enumerate(index):
        if _has_dim_ends(item):
            start = Dim(item.start or 0).evaluate(bindings)
            stop = shape[axis] if item.stop is None else Dim(item.stop).evaluate(bindings)
            if not (0 <= start <= stop <= shape[axis] or 0 <= start == stop):  # [k:k]: empty
                raise ValueError(
                    f"slice: {_text(item)} is [{start}:{stop}] at this execution, "
                    f"which does not lie in order within axis {axis} of {shape[axis]} elements"
                )
            item = slice(start, stop)
        concrete.append(item)
    return tuple(concrete)


def _has_dim_ends(item: Any) -> bool:
    """Whether `item` is a slice with an end that is a symbolic dim."""
    return isinstance(item, slice) and any(isinstance(v, Dim) for v in (item.start, item.stop))


def _plain(taken: range) -> slice:
    """The slice of a static axis that takes `taken`, its ends within the axis and a step no
    longer than it (XLA refuses a step past int64, and numpy's would reach nothing)."""
    if len(taken) <= 1:
        return slice(taken.start, taken.start + len(taken), 1)
    return slice(taken.start, taken.stop if taken.stop >= 0 else None, taken.step)


def _static_ends(item: Any) -> Any:
    """A slice's static dim ends as ints."""
    if not isinstance(item, slice):
        return item
    ends = [int(v) if isinstance(v, StaticDim) else v for v in (item.start, item.stop)]
    return slice(*ends, item.step)


def _dim_slice(axis: int, item: slice, dim: Dim) -> Dim:
    """The length of a slice with symbolic ends (`x[start:start + n]`, as MAX's rotary
    embedding slices its table by positions, or `x[start:]`): ends counting from the start,
    step 1."""
    ends = (item.start or 0, dim if item.stop is None else item.stop)
    if item.step not in (None, 1) or any(
        not isinstance(v, Dim) and (not isinstance(v, numbers.Integral) or v < 0) for v in ends
    ):
        raise ValueError(
            f"slice: axis {axis} is sliced by dims {_text(item)}; such a slice "
            "takes ends that count from the start (dims, or ints of 0 or more) and step 1"
        )
    return Dim(ends[1]) - Dim(ends[0])


def _symbolic_slice(axis: int, dim: Any, item: slice) -> tuple[Any, int]:
    """(the length of `item` over the symbolic `dim`, the size the axis must have at least)."""
    start, stop, step = item.start or 0, item.stop, item.step or 1
    if step > 0:
        if start >= 0 and (stop is None or stop < 0):  # [s::k], [:-e:k], [s:-e:k]
            drop = start + (-stop if stop is not None else 0)
            return (dim - drop + (step - 1)) // step, drop
        if stop is not None and (0 <= stop <= start or stop <= start < 0):
            return StaticDim(0), 0  # [s:t] or [-s:-t] that ends where it starts, or before
        if 0 <= start <= stop:  # [s:t:k]
            return StaticDim(_count(stop - start, step)), stop
        if start < 0 and stop is not None and start <= stop < 0:  # [-s:-t:k]
            return StaticDim(_count(stop - start, step)), -start
        if start < 0 and stop is None:  # [-s::k]
            return StaticDim(_count(-start, step)), -start
    if item.start is None and stop is None:  # [::-k]
        return (dim + (-step - 1)) // -step, 0
    raise ValueError(
        f"slice: axis {axis} is the symbolic dim {dim!r}; {_text(item)} of it has an unknown "
        "length: a slice of a symbolic dim has ends that count from the same end ([s:], "
        "[:-e], [s:-e], [s:t], [-s:], [-s:-t], each with any positive step), or reverses it "
        "whole ([::-k])"
    )


def _count(span: int, step: int) -> int:
    """How many of every `step`-th element a run of `span` holds (a range's length, without
    `len`, which refuses ranges past a C size)."""
    return (span + step - 1) // step


def slice_too_long(axis: int, size: int, needs: int, index: tuple) -> ValueError:
    """The error for an axis found, at execution, shorter than a slice of it needs."""
    return ValueError(
        f"slice: axis {axis} has {size} elements at execution; {_text(index[axis])} needs "
        f"at least {needs}"
    )


def _text(item: slice | int) -> str:
    if not isinstance(item, slice):
        return f"[{item}]"
    ends = (item.start, item.stop) if item.step in (None, 1) else (item.start, item.stop, item.step)
    return "[" + ":".join("" if v is None else str(v) for v in ends) + "]"


def _new_axes(rank: int, items: tuple) -> list[int]:
    """Where each `None` of `items` puts its new axis in the result, in increasing order."""
    consumed = sum(item is not None and item is not Ellipsis for item in items)
    axes, at = [], 0
    for item in items:
        if item is None:
            axes.append(at)
            at += 1
        elif item is Ellipsis:
            at += max(rank - consumed, 0)
        elif isinstance(item, slice):
            at += 1
    return axes


def _expand(rank: int, items: tuple) -> list:
    """`items` with `...` (found by identity: an array or graph value among them compares
    elementwise) made full slices, and full slices for the axes left unnamed."""
    ellipses = [i for i, item in enumerate(items) if item is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError("slice: an index can only have a single ellipsis ('...')")
    if len(items) - len(ellipses) > rank:
        raise IndexError(f"slice: too many indices ({len(items)}) for a value of rank {rank}")
    if ellipses:
        at = ellipses[0]
        fill = rank - (len(items) - 1)
        items = items[:at] + (slice(None),) * fill + items[at + 1 :]
    return list(items) + [slice(None)] * (rank - len(items))
