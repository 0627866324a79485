"""`band_part(x, num_lower=None, num_upper=None, exclude=False)`: MAX's band of the last two
axes (a causal mask's shape), everything outside it zeroed. A composition (`range`, a
comparison, `where`): no symbol of its own.

>>> import numpy as np
>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.float32, ["seq", "seq"])]) as g:
...     causal = band_part(g.inputs[0], num_upper=0)  # the lower triangle and the diagonal
>>> causal.shape
[Dim('seq'), Dim('seq')]
"""

from __future__ import annotations

import numbers
from typing import Any

from ember.dtype import DType

from ..dim import StaticDim
from ..value import TensorValue
from .broadcast_to import broadcast_to
from .comparison import less_equal
from .constant import as_value, constant
from .logical import logical_and, logical_not
from .range import range
from .select import select

__all__ = ["band_part"]


def band_part(
    x: Any, num_lower: int | None = None, num_upper: int | None = None, exclude: bool = False
) -> TensorValue:
    """`x` where `m - n <= num_lower` and `n - m <= num_upper` (row `m`, column `n` of the last
    two axes; None or -1, as MAX takes it: the whole triangle), zeros elsewhere; `exclude`
    zeroes the band instead.

    Raises:
        ValueError: `x` has fewer than two axes; a band width below -1, or past a static axis.
    """
    num_lower = None if num_lower == -1 and not isinstance(num_lower, bool) else num_lower
    num_upper = None if num_upper == -1 and not isinstance(num_upper, bool) else num_upper
    value = as_value(x)
    if value.rank < 2:
        raise ValueError(f"Input tensor x.shape={value.shape} must have at least 2 dimensions")
    *_, rows, columns = value.shape
    for label, width, size in (("num_lower", num_lower, rows), ("num_upper", num_upper, columns)):
        if width is None:
            continue
        if isinstance(width, bool) or not isinstance(width, numbers.Integral) or width < 0:
            raise ValueError(f"{label}={width!r} must be non-negative")
        if isinstance(size, StaticDim) and width >= int(size):
            raise ValueError(f"{label}={width} is out of bounds for dimension size {int(size)}")
    m = range(0, rows, 1, rows, dtype=DType.int64, device=value.device).reshape([rows, 1])
    n = range(0, columns, 1, columns, dtype=DType.int64, device=value.device)
    below, above = m - n, n - m
    inside = None
    for distance, width in ((below, num_lower), (above, num_upper)):
        if width is not None:
            near = less_equal(distance, int(width))
            inside = near if inside is None else logical_and(inside, near)
    if inside is None:  # the whole matrix is the band
        if not exclude:
            return value
        return broadcast_to(constant(0, value.dtype, value.device), value.shape)
    if exclude:
        inside = logical_not(inside)
    return select(inside, value, 0)
