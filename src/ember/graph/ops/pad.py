"""`pad(input, paddings, mode="constant", value=0)`: MAX's padding of every axis, `paddings`
`[before_0, after_0, before_1, after_1, ...]`, filled with `value`, a reflection about each
edge (`"reflect"`, the edge itself left out) or the edge repeated (`"edge"`), as numpy pads.

>>> import numpy as np
>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.int64, ["batch", "seq"])]) as g:
...     ids = pad(g.inputs[0], [0, 0, 0, 8], value=-1)
>>> ids.shape
[Dim('batch'), Dim(seq + 8)]
"""

from __future__ import annotations

import numbers
from typing import Any

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .broadcasting import scalar_in
from .constant import as_value

__all__ = ["PAD", "PAD_MODES", "empty_axis_pad_error", "pad"]

PAD = Op("pad")

PAD_MODES = ("constant", "reflect", "edge")


def pad(input: Any, paddings: Any, mode: str = "constant", value: Any = 0) -> TensorValue:
    """`input` padded along every axis; the same dtype.

    Raises:
        ValueError: `mode` is none of `PAD_MODES`; `paddings` is not two non-negative ints per
            axis.
        GraphTypeError: `value` does not fit `input`'s dtype.
    """
    x = as_value(input)
    if mode not in PAD_MODES:
        raise ValueError(
            f"unsupported padding mode {mode!r}; expected 'constant', 'reflect', or 'edge'"
        )
    try:
        widths = list(paddings)
    except TypeError:
        raise ValueError(
            f"pad: paddings are two ints per axis of {x.shape}, got {paddings!r}"
        ) from None
    if len(widths) != 2 * x.rank or not all(
        isinstance(w, numbers.Integral) and not isinstance(w, bool) for w in widths
    ):
        raise ValueError(
            f"pad: paddings are two ints per axis of {x.shape} ({2 * x.rank}), got {widths}"
        )
    if any(w < 0 for w in widths):
        raise ValueError(f"padding values must be non-negative but given {widths}")
    if not isinstance(value, numbers.Number):
        raise TypeError(f"pad: value must be a number, got {value!r}")
    fill = scalar_in("pad", value, x.dtype).item()
    if x.rank == 0:  # no axis to pad: the value itself, as MAX's shape rule gives
        return x
    shape = [d + int(widths[2 * i]) + int(widths[2 * i + 1]) for i, d in enumerate(x.shape)]
    attrs = {"paddings": tuple(int(w) for w in widths), "mode": mode, "value": fill}
    return current_graph().add_node(PAD, [x], attrs, [TensorType(x.dtype, shape, x.device)])[0]


def empty_axis_pad_error(mode: str, axis: int) -> ValueError:
    """The error for `"reflect"` or `"edge"` padding an axis that is empty at execution (there
    is no edge to repeat or reflect about); each backend's lowering raises it."""
    return ValueError(f"pad: mode {mode!r} cannot pad axis {axis}: it is empty")
