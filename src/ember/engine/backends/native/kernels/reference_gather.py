"""Gather + dequantize for block formats with no compiled row decoder yet: the quantized rows
are gathered as bytes by the row-gather kernel, then decoded by `ember.quant`'s reference
decoder (vectorized numpy, bit-exact with gguf). Only the rows looked up are decoded.

>>> import numpy as np
>>> from ember.quant import FORMATS
>>> table = FORMATS["q8_0"].quantize(np.arange(64, dtype=np.float32).reshape(2, 32))
>>> out = np.empty((1, 32), np.float32)
>>> reference_gather(FORMATS["q8_0"], table, np.array([1]), 0, MODE_ERROR, out, False)
-1
>>> np.array_equal(out, FORMATS["q8_0"].dequantize(table[[1]]))
True
"""

from __future__ import annotations

import numpy as np

from ember.quant import QuantFormat

from .gather import gather_rows
from .modes import MODE_ERROR, MODE_SKIP, MODE_ZERO  # noqa: F401 - MODE_ERROR: the doctest
from .numpy_gather import numpy_gather_rows

__all__ = ["reference_gather"]


def reference_gather(
    fmt: QuantFormat,
    table: np.ndarray,
    ids: np.ndarray,
    offset: int,
    mode: int,
    out: np.ndarray,
    parallel: bool,
    compiled: bool = True,
) -> int:
    """What `gather_dequantize` does, for `fmt`: -1, or the first bad position. The rows are
    gathered by the compiled kernel, or by numpy when ``compiled`` is False."""
    rows = np.zeros((ids.size, table.shape[1]), np.uint8)
    if compiled:
        bad = gather_rows(table, ids, offset, mode, rows, parallel)
    else:
        bad = numpy_gather_rows(table, ids, offset, mode, rows)
    if bad >= 0:
        return bad
    values = fmt.dequantize(rows)
    with np.errstate(over="ignore", invalid="ignore"):  # beyond fp16: inf, as the kernels give
        if mode in (MODE_ZERO, MODE_SKIP):
            owned = _owned(ids, offset, table.shape[0])
            if mode == MODE_SKIP:
                out[owned] = values[owned].astype(out.dtype)
                return -1
            values[~owned] = 0
        out[...] = values.astype(out.dtype)
    return -1


def _owned(ids: np.ndarray, offset: int, rows: int) -> np.ndarray:
    """Which ids have a row in `[offset, offset + rows)`, compared in the ids' own type."""
    info = np.iinfo(ids.dtype)
    low, high = offset, offset + rows - 1
    if high < info.min or low > info.max or rows == 0:
        return np.zeros(ids.shape, bool)
    return (ids >= max(low, info.min)) & (ids <= min(high, info.max))
