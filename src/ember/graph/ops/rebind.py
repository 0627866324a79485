"""`rebind(x, shape, message)`: `x` under new dims that must describe its shape (MAX's
`ops.rebind`): a symbolic axis takes another name or a static size, checked at each execution.
A name that no graph input binds is bound by the rebind, from the size of the first axis it
is the only new name of (`Dim("k") * 4` binds `k` to a quarter of that size).

>>> from ember.graph import Graph, TensorType
>>> types = [TensorType(DType.float32, ["n", 8]), TensorType(DType.int64, ["m"])]
>>> with Graph("g", input_types=types) as g:
...     y = rebind(g.inputs[0], ["m", 8])
>>> y.shape
[Dim('m'), Dim(8)]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..dim import Dim, DimLike, StaticDim
from ..graph import current_graph
from ..op import Op
from ..shape import Shape
from ..type import TensorType
from ..value import TensorValue
from .constant import as_value
from .dim_binders import dim_binders

__all__ = ["REBIND", "check_rebind", "rebind"]

REBIND = Op("rebind", may_alias=True)


def rebind(x: Any, shape: Iterable[DimLike], message: str = "", layout: Any = None) -> TensorValue:
    """`message` leads the error an execution raises when `x`'s shape is not `shape`. MAX's
    `layout` (a convolution filter's) must be left unset.

    Raises:
        ValueError: a rank other than `x`'s, two static dims that differ, or an axis of two
            new names (no axis names only one of them).
        NotImplementedError: `layout` is set.
    """
    if layout is not None:
        raise NotImplementedError("rebind: ember has no filter layouts; leave layout unset")
    value = as_value(x)
    target = Shape(shape)
    if target.rank != value.rank:
        raise ValueError(f"rebind: {value.shape} has rank {value.rank}, {target} {target.rank}")
    for axis, (a, b) in enumerate(zip(value.shape, target, strict=True)):
        if isinstance(a, StaticDim) and isinstance(b, StaticDim) and a != b:
            lead = f"{message}: " if message else ""
            raise ValueError(f"{lead}rebind: axis {axis} of {value.shape} is {a!r}, never {b!r}")
    graph = current_graph()
    known = set().union(value.shape.symbols(), *(v.shape.symbols() for v in graph.inputs))
    binds: dict[str, int] = {}  # each new name, and the first axis where it is the only one
    for axis, dim in enumerate(target):
        unknown = dim.symbols() - known - binds.keys()
        if len(unknown) == 1:
            binds[unknown.pop()] = axis
    new = target.symbols() - value.shape.symbols() - binds.keys()
    binders = dim_binders("rebind", graph, new, value.device, f"shape {target}")
    result = TensorType(value.dtype, target, value.device)
    attrs = {"shape": target, "message": message, "binds": binds}
    return graph.add_node(REBIND, [value, *binders], attrs, [result])[0]


def check_rebind(node_attrs: dict[str, Any], actual: tuple[int, ...], bindings: dict) -> None:
    """Bind the names the rebind introduces to `actual`'s sizes (in `bindings`, this
    execution's), then check that `actual` is the rebind's shape.

    Raises:
        ValueError: it is not (led by the rebind's message).
    """
    target = node_attrs["shape"]
    for name, axis in node_attrs["binds"].items():
        if name not in bindings:
            bindings[name] = _solve(target[axis], name, actual[axis], bindings)
    dims = target.evaluate(bindings)
    if actual != tuple(dims):
        message = node_attrs["message"]
        lead = f"{message}: " if message else ""
        raise ValueError(
            f"{lead}rebind: the value's shape is {list(actual)} at this execution, not {target} "
            f"({list(dims)} here)"
        )


def _solve(dim: Dim, name: str, size: int, bindings: dict[str, int]) -> int:
    """The size of `name` that makes `dim` (linear in it: `a * name + b`) equal `size`; where
    none does, any (the shape check after it raises)."""
    base = dim.evaluate({**bindings, name: 0})
    slope = dim.evaluate({**bindings, name: 1}) - base
    return (size - base) // slope if slope else size
