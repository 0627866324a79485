"""`layer_norm(input, gamma, beta, epsilon)`: MAX's layer normalization over the last axis,
`gamma * (x - mean) / sqrt(var + epsilon) + beta` (the variance of the axis' values, not
their sample variance, as torch's).

>>> import numpy as np
>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.bfloat16, ["tokens", 384])]) as g:
...     y = layer_norm(g.inputs[0], np.ones(384, np.float32), np.zeros(384, np.float32), 1e-12)
>>> y.shape, y.dtype
([Dim('tokens'), Dim(384)], bfloat16)

Natively the axis is reduced in float64 and the result rounded once to `input`'s dtype; on
`xla` in float32 (float64 stays float64), within `2**-19 * (|gamma * x_hat| + |beta| + 1)`
of the exact value (`x_hat` the normalized value). Either is more exact than MAX's reduction
in the input's own dtype. A row of one value gives `beta` exactly, and rows near float32's
largest values neither overflow nor vanish (each is scaled by a power of two first).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..dim import StaticDim
from ..errors import GraphTypeError
from ..graph import current_graph
from ..op import Op
from ..value import TensorValue
from ..weight import Weight
from .argmax import ranked_value
from .constant import as_value
from .transfer import transfer_to

__all__ = ["LAYER_NORM", "check_features", "finite_number", "layer_norm", "per_feature"]

LAYER_NORM = Op("layer_norm")


def per_feature(op: str, what: str, vector: Any, x: TensorValue) -> TensorValue:
    """`vector` as a float value of shape `(x.shape[-1],)` on `x`'s device (an array is put
    there; a graph value must live there). Where either size is symbolic, as MAX does, the two
    are compared at execution (`check_features`).

    Raises:
        ValueError: its shape is not that, or the graph value lives on another device.
        GraphTypeError: it is not a float value.
    """
    value = as_value(vector)
    if not isinstance(vector, TensorValue | Weight) and value.device != x.device:
        value = transfer_to(value, x.device)
    if not value.dtype.is_float():
        raise GraphTypeError(f"{op}: {what} must be floats, got {value.dtype!r}")
    size, last = (value.shape[0] if value.rank == 1 else None), x.shape[-1]
    static = isinstance(size, StaticDim) and isinstance(last, StaticDim)
    if value.rank != 1 or (static and size != last):
        raise ValueError(
            f"{op}: {what} of shape {value.shape} does not match dimension of reduction, the "
            f"input's last dimension ({x.shape}): it must be [{last}]"
        )
    if value.device != x.device:
        raise ValueError(
            f"{op}: {what} lives on {value.device}, the input on {x.device}: they must be on "
            "the same device"
        )
    return value


def finite_number(op: str, name: str, value: Any) -> float:
    """`value` as a float, where it is a finite real number.

    Raises:
        TypeError: it is not a number (a bool is not one here).
        ValueError: it is inf or NaN.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{op}: {name} must be finite, got {value!r}")
    return float(value)


def check_features(op: str, last: int, **sizes: int) -> None:
    """At execution, where a size or the input's last dimension was symbolic at build: each
    named vector's length (`sizes`) must be `last` (each backend's lowering calls it).

    Raises:
        ValueError: a length differs from `last`.
    """
    for what, size in sizes.items():
        if size != last:
            raise ValueError(
                f"{op}: {what} has {size} values, and the input's last dimension is {last} at "
                "this execution: they must be equal"
            )


def layer_norm(input: Any, gamma: Any, beta: Any, epsilon: float) -> TensorValue:
    """Normalize each slice along the last axis to mean 0 and variance 1, then scale by
    `gamma` and shift by `beta` (each of shape `(input.shape[-1],)`, any float dtype).

    Raises:
        GraphTypeError: `input`, `gamma` or `beta` is not floats (a `TypeError`, and MAX's
            `ValueError`).
        TypeError: `epsilon` is not a number.
        ValueError: `input` is a scalar; `gamma` or `beta` does not match its last dimension
            or lives on another device; `epsilon` is not positive and finite.
    """
    x = ranked_value("layer_norm", input, floats_only=True)
    scale = per_feature("layer_norm", "gamma", gamma, x)
    shift = per_feature("layer_norm", "beta", beta, x)
    epsilon = finite_number("layer_norm", "epsilon", epsilon)
    if not epsilon > 0:
        raise ValueError(f"layer_norm: epsilon must be positive, got {epsilon!r}")
    attrs = {"epsilon": epsilon}
    return current_graph().add_node(LAYER_NORM, [x, scale, shift], attrs, [x.type])[0]
