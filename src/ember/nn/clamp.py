"""`clamp(x, min=None, max=None)`: MAX's `nn.clamp`, values held to `[min, max]` by the
elementwise `max` and `min` against constants of `x`'s dtype (NaN stays NaN, as in torch)."""

from __future__ import annotations

from typing import Any

from ember.graph import TensorValue, ops

__all__ = ["clamp"]


def clamp(x: Any, min: float | None = None, max: float | None = None) -> TensorValue:
    """`x` with values below `min` raised to it and above `max` lowered to it (a bound of
    None is no bound).

    Raises:
        GraphTypeError: a bound that `x`'s dtype cannot hold (300 for int8, 0.5 for ints).
    """
    value = ops.as_value(x)
    if min is not None:
        value = ops.max(value, ops.constant(min, value.dtype, device=value.device))
    if max is not None:
        value = ops.min(value, ops.constant(max, value.dtype, device=value.device))
    return value
