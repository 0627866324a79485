"""`cumsum(x, axis=-1, exclusive=False, reverse=False)`: MAX's running sums along an axis, in
`x`'s dtype and shape.

>>> import numpy as np
>>> from ember.graph import Graph
>>> with Graph("g") as g:
...     total = cumsum(np.array([[1, 2, 3]], np.int32), exclusive=True)
>>> total.shape, total.dtype
([Dim(1), Dim(3)], int32)

`exclusive` starts each sum at 0 and leaves the element itself out; `reverse` sums from the
end. Integers are exact (wrapping as the dtype does); as in MAX, float32 is summed in
float64 and bfloat16 and float16 in float32, each sum rounded once. The order of a float sum
is each backend's own (natively one element after another; XLA's scan may group them), so a
float32 running sum of `n` terms is within half a unit in its last place plus
`n * 2**-53 * sum |x_i|` of the exact one on either, but that on `xla` on a CPU subnormal
values and sums count as zero (XLA's CPU code flushes them).
"""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..errors import GraphTypeError
from ..graph import current_graph
from ..op import Op
from ..value import TensorValue
from .argmax import ranked_value
from .axis import normalize_axis

__all__ = ["CUMSUM", "cumsum"]

CUMSUM = Op("cumsum")


def cumsum(x: Any, axis: int = -1, exclusive: bool = False, reverse: bool = False) -> TensorValue:
    """The running sums of `x` along `axis`.

    Raises:
        ValueError: `x` is a scalar.
        AxisError: `axis` is out of range for `x`.
        GraphTypeError: `x` holds bools.
    """
    value = ranked_value("cumsum", x, floats_only=False)
    if value.dtype is DType.bool:
        raise GraphTypeError("cumsum: takes numbers, got bool values; cast them first")
    attrs = {
        "axis": normalize_axis("cumsum", axis, value.rank),
        "exclusive": bool(exclusive),
        "reverse": bool(reverse),
    }
    return current_graph().add_node(CUMSUM, [value], attrs, [value.type])[0]
