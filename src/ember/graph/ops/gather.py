"""`gather(input, indices, axis)`: pick slices of `input` along `axis` by index.

>>> from ember.graph import Graph, TensorType, Weight
>>> table = Weight("table", DType.float32, [1000, 64])
>>> with Graph("g", input_types=[TensorType(DType.int64, ["batch", "seq"])]) as g:
...     rows = gather(table, g.inputs[0], axis=0)
>>> rows.shape
[Dim('batch'), Dim('seq'), Dim(64)]
"""

from __future__ import annotations

from typing import Any, Literal

from ember.dtype import DType

from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .axis import normalize_axis
from .constant import as_value

__all__ = ["GATHER", "OUT_OF_RANGE_VALUES", "OutOfRange", "gather", "index_value"]

GATHER = Op("gather", lookup=True)

OutOfRange = Literal["wrap", "error", "zero", "clamp"]
OUT_OF_RANGE_VALUES: tuple[str, ...] = ("wrap", "error", "zero", "clamp")


def gather(
    input: Any, indices: Any, axis: int, *, out_of_range: OutOfRange = "wrap"
) -> TensorValue:
    """Slices of `input` at `indices` along `axis`; the result's shape is `input.shape` with
    that axis replaced by `indices.shape`.

    `out_of_range` says what an index outside `[0, size)` does when the model executes:
    "wrap" (MAX's rule: `-size <= i < 0` counts from the end, others raise IndexError),
    "error" (raise IndexError naming the index, its position and the size), "zero" (a zero
    slice) or "clamp" (the nearest valid slice; on an empty axis, where there is none, it
    raises as "error" does).

    Raises:
        TypeError: `indices` is not an integer tensor.
        ValueError: the two live on different devices, or `out_of_range` is unknown.
        AxisError: `axis` is out of range for `input`.
    """
    source, index = as_value(input), index_value("gather", indices)
    axis = normalize_axis("gather", axis, source.rank)
    if out_of_range not in OUT_OF_RANGE_VALUES:
        raise ValueError(
            f"gather: out_of_range must be one of {OUT_OF_RANGE_VALUES}, got {out_of_range!r}"
        )
    if source.device != index.device:
        raise ValueError(
            f"gather: input and indices must be on the same device; input lives on "
            f"{source.device} and indices on {index.device}: move the indices with .to(device)"
        )
    shape = [*source.shape[:axis], *index.shape, *source.shape[axis + 1 :]]
    result = TensorType(source.dtype, shape, source.device)
    attrs = {"axis": axis, "out_of_range": out_of_range}
    return current_graph().add_node(GATHER, [source, index], attrs, [result])[0]


def index_value(op: str, indices: Any) -> TensorValue:
    """`indices` as a graph value of an integer dtype.

    Raises:
        TypeError: the dtype is not an integer type (floats and bools are rejected).
    """
    value = as_value(indices)
    if not value.dtype.is_integral():
        raise TypeError(
            f"{op}: indices must have an integer dtype, got {value.dtype!r} "
            f"(expected one of {', '.join(repr(d) for d in DType if d.is_integral())})"
        )
    return value
