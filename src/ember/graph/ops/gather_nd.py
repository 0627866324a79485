"""`gather_nd(input, indices, batch_dims)`: pick elements or slices of `input` by index
vectors, each naming a position in several leading dims at once (MAX's `ops.gather_nd`).

>>> from ember.graph import Graph, TensorType
>>> types = [TensorType(DType.float32, ["b", 8, 4, 16]), TensorType(DType.int64, ["b", 5, 2])]
>>> with Graph("g", input_types=types) as g:
...     picked = gather_nd(*g.inputs, batch_dims=1)
>>> picked.shape
[Dim('b'), Dim(5), Dim(16)]
"""

from __future__ import annotations

from typing import Any

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..dim import StaticDim
from ..errors import GraphTypeError
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .constant import as_value

__all__ = ["GATHER_ND", "gather_nd"]

GATHER_ND = Op("gather_nd")


def gather_nd(input: Any, indices: Any, batch_dims: int = 0) -> TensorValue:
    """`input` at the index vectors along the last axis of `indices`: with `k` that axis's
    (static) size, each vector names a position in the `k` dims of `input` that follow its
    first `batch_dims`, which `input` and `indices` share. The result's shape is
    `input.shape[:batch_dims] + indices.shape[batch_dims:-1] +
    input.shape[batch_dims + k:]`.

    Indices follow `gather`'s MAX rule: `-size <= i < 0` counts from the end of its dim; any
    other index outside `[0, size)` raises `OutOfRangeError` at execution, naming it, the
    position of its vector (over `indices.shape[:-1]`) and the input axis it indexes.

    Raises:
        GraphTypeError: `indices` is not of an integer dtype (a `TypeError` as ember's other
            lookups raise, and the `ValueError` MAX raises).
        ValueError: the two live on different devices, `indices` is a scalar or its last dim
            is not static, `batch_dims` is negative or leaves no index axis, the index vectors
            are longer than the dims they index, or the batch dims differ.
    """
    source, index = as_value(input), as_value(indices)
    if not index.dtype.is_integral():
        raise GraphTypeError(f"gather_nd: indices must have an integer dtype, got {index.dtype!r}")
    if source.device != index.device:
        raise ValueError(
            f"gather_nd: input and indices must be on the same device; input lives on "
            f"{source.device} and indices on {index.device}: move the indices with .to(device)"
        )
    if index.rank == 0:
        raise ValueError("gather_nd: indices must have a last axis, the index vectors")
    if not isinstance(index.shape[-1], StaticDim):
        raise ValueError(
            f"gather_nd: the last dim of indices (the index vectors' length) must be static, "
            f"got {index.shape}"
        )
    size = int(index.shape[-1])
    if isinstance(batch_dims, bool) or not isinstance(batch_dims, int) or batch_dims < 0:
        raise ValueError(f"gather_nd: batch_dims must be an int >= 0, got {batch_dims!r}")
    if batch_dims > index.rank - 1:
        raise ValueError(
            f"gather_nd: batch_dims={batch_dims} leaves indices {index.shape} no index axis"
        )
    if batch_dims + size > source.rank:
        raise ValueError(
            f"gather_nd: index vectors of {size} after {batch_dims} batch dims need an input "
            f"of rank {batch_dims + size} or more, got {source.shape}"
        )
    if list(source.shape[:batch_dims]) != list(index.shape[:batch_dims]):
        raise ValueError(
            f"gather_nd: input {source.shape} and indices {index.shape} must have the same "
            f"first {batch_dims} dims"
        )
    shape = [
        *source.shape[:batch_dims],
        *index.shape[batch_dims:-1],
        *source.shape[batch_dims + size :],
    ]
    result = TensorType(source.dtype, shape, source.device)
    attrs = {"batch_dims": batch_dims}
    return current_graph().add_node(GATHER_ND, [source, index], attrs, [result])[0]
