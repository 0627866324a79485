"""`nonzero(x, out_dim)`: MAX's indices of the nonzero elements of `x`, one row of `x.rank`
int64 coordinates each, in row-major order (`numpy.argwhere`): which tokens of a batch are
not padding, which places a mask selects.

>>> from ember.graph import Graph, TensorType
>>> types = [TensorType(DType.bool, ["seq"]), TensorType(DType.float32, ["kept", 8])]
>>> with Graph("g", input_types=types) as g:
...     keep, rows = g.inputs
...     places = nonzero(keep, out_dim=rows.shape[0])
>>> places.shape
[Dim('kept'), Dim(1)]

The result's size is known only from the data. `out_dim` is a number or dims an input
binds, and at each execution the count of nonzero elements must equal it, else one clear
error; or, on the native backend, a new name (MAX's "newly generated dimension"), bound at
each execution to the count for the nodes after it (XLA compiles static shapes, and refuses
one at load). NaN is nonzero, and so is True.
"""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..dim import Dim, SymbolicDim
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .constant import as_value
from .dim_binders import dim_binders, full_binders

__all__ = ["NONZERO", "nonzero", "nonzero_error"]

NONZERO = Op("nonzero")


def nonzero(x: Any, out_dim: Any) -> TensorValue:
    """The `(out_dim, x.rank)` int64 coordinates of `x`'s nonzero elements.

    Raises:
        ValueError: `x` is a scalar, or `out_dim` is an expression of a symbol no graph
            input binds.
    """
    value = as_value(x)
    if value.rank == 0:
        raise ValueError("nonzero: Scalar inputs not supported")
    count = Dim(out_dim)
    graph = current_graph()
    binders = full_binders(graph, count.symbols(), value.device)
    attrs = {"out_dim": count, "binds": None}
    if binders is None:
        if not isinstance(count, SymbolicDim):
            dim_binders("nonzero", graph, count.symbols(), value.device, f"out_dim {count}")
        attrs["binds"], binders = count.name, []
    result = TensorType(DType.int64, [count, value.rank], value.device)
    return graph.add_node(NONZERO, [value, *binders], attrs, [result])[0]


def nonzero_error(count: int, expected: int) -> ValueError:
    """The error for a count of nonzero elements other than `out_dim`, at execution."""
    return ValueError(
        f"nonzero: {count} elements are nonzero, and out_dim is {expected} at this execution"
    )
