"""`rms_norm(input, weight, epsilon, weight_offset=0.0, multiply_before_cast=False)`: MAX's
root-mean-square normalization over the last axis, `x / sqrt(mean(x ** 2) + epsilon) *
(weight + weight_offset)`: the norm before a tied LM head in Llama, Gemma and Qwen.

>>> import numpy as np
>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.bfloat16, ["tokens", 64])]) as g:
...     gemma = rms_norm(g.inputs[0], np.zeros(64, np.float32), 1e-6, weight_offset=1.0,
...                      multiply_before_cast=True)
>>> gemma.shape, gemma.dtype
([Dim('tokens'), Dim(64)], bfloat16)

MAX's two variants, and the rounding each fixes:
- Llama's (`multiply_before_cast=False`): the normalized value is rounded to `input`'s dtype,
  then multiplied by `weight + weight_offset` and rounded again (torch's
  `weight * x.to(dtype)`).
- Gemma's (`multiply_before_cast=True`): the product is computed wide and rounded once.

Natively the wide arithmetic is float64, on `xla` float32 (float64 stays float64; float32
results within 4 units in the last place of the exact ones); `weight + weight_offset` is
exact in it. Rows near float32's largest values neither overflow nor vanish (each is scaled
by a power of two first).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..graph import current_graph
from ..op import Op
from ..value import TensorValue
from .argmax import ranked_value
from .layer_norm import finite_number, per_feature

__all__ = ["RMS_NORM", "rms_norm"]

RMS_NORM = Op("rms_norm")


def rms_norm(
    input: Any,
    weight: Any,
    epsilon: float,
    weight_offset: float = 0.0,
    multiply_before_cast: bool = False,
) -> TensorValue:
    """Divide each slice along the last axis by its root mean square (plus `epsilon` under
    the root), then scale by `weight + weight_offset` (`weight` of shape
    `(input.shape[-1],)`, any float dtype).

    Raises:
        TypeError: `input` is not a float value.
        ValueError: `input` is a scalar; `weight` does not match its last dimension or lives
            on another device; `epsilon` is negative; `epsilon` or `weight_offset` is not
            finite.
        TypeError: `epsilon` or `weight_offset` is not a number, `multiply_before_cast` not a
            bool.
        GraphTypeError: `weight` is not floats.
    """
    x = ranked_value("rms_norm", input, floats_only=True)
    scale = per_feature("rms_norm", "weight", weight, x)
    epsilon = finite_number("rms_norm", "epsilon", epsilon)
    if not epsilon >= 0:
        raise ValueError(f"rms_norm: epsilon must be 0 or more, got {epsilon!r}")
    if not isinstance(multiply_before_cast, bool | np.bool_):
        raise TypeError(
            f"rms_norm: multiply_before_cast must be a bool, got {multiply_before_cast!r}"
        )
    attrs = {
        "epsilon": epsilon,
        "weight_offset": finite_number("rms_norm", "weight_offset", weight_offset),
        "multiply_before_cast": bool(multiply_before_cast),
    }
    return current_graph().add_node(RMS_NORM, [x, scale], attrs, [x.type])[0]
