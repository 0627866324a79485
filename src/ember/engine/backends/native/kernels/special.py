"""`erf` and `erfc` of float64 arrays: through their compiled kernels once those are ready,
through Python's `math.erf` / `math.erfc` (the same C functions, a value at a time) until then
(see `background`).

>>> erf(np.array([[0.5, -2.0]])).round(6).tolist()
[[0.5205, -0.995322]]
>>> float(erfc(np.array(10.0)))
2.088487583762545e-45
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from . import background
from .compiled.special import erf_into, erfc_into

__all__ = ["erf", "erfc"]


def _elementwise(name: str, kernel: Callable, each: Callable) -> Callable[[np.ndarray], np.ndarray]:
    compiled = background.kernel(name, name, lambda: kernel(np.zeros(1), np.empty(1)))
    one_by_one = np.frompyfunc(each, 1, 1)

    def apply(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64, order="C")
        if not compiled.request():
            return np.asarray(one_by_one(x), np.float64)
        out = np.empty_like(x)
        kernel(x.reshape(-1), out.reshape(-1))
        return out

    apply.__name__ = name
    apply.__doc__ = f"``{name}(x)`` elementwise, as a new float64 array of `x`'s shape."
    return apply


erf = _elementwise("erf", erf_into, math.erf)
erfc = _elementwise("erfc", erfc_into, math.erfc)
