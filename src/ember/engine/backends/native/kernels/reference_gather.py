"""Gather + dequantize through ``ember.quant``'s reference decoders: the quantized rows are
gathered as bytes by `numpy_gather_rows`, then decoded by the format's vectorized numpy
``dequantize`` (bit-exact with gguf). Only the rows looked up are decoded.

It serves quantized lookups while their compiled kernel is still compiling, with nothing to
compile itself, and decodes a registry format that has no compiled row decoder yet (see the
package docstring on adding a format).

>>> import numpy as np
>>> from ember.quant import FORMATS
>>> table = FORMATS["q8_0"].quantize(np.arange(64, dtype=np.float32).reshape(2, 32))
>>> out = np.empty((1, 32), np.float32)
>>> reference_gather(FORMATS["q8_0"], table, np.array([1]), 0, ERROR, out)
-1
>>> np.array_equal(out, FORMATS["q8_0"].dequantize(table[[1]]))
True
"""

from __future__ import annotations

import numpy as np

from ember.quant import QuantFormat

from .id_range import within
from .numpy_gather import numpy_gather_rows
from .out_of_range import ERROR, SKIP, ZERO  # noqa: F401 - ERROR: the doctest

__all__ = ["reference_gather"]


def reference_gather(
    fmt: QuantFormat,
    table: np.ndarray,
    ids: np.ndarray,
    offset: int,
    out_of_range: int,
    out: np.ndarray,
) -> int:
    """What `gather_dequantize` does, for `fmt`: -1, or the first bad position."""
    rows = np.zeros((ids.size, table.shape[1]), np.uint8)
    bad = numpy_gather_rows(table, ids, offset, out_of_range, rows)
    if bad >= 0:
        return bad
    values = fmt.dequantize(rows)
    with np.errstate(over="ignore", invalid="ignore"):  # beyond fp16: inf, as the kernels give
        if out_of_range in (ZERO, SKIP):
            owned = within(ids, offset, offset + table.shape[0] - 1)
            if out_of_range == SKIP:
                out[owned] = values[owned].astype(out.dtype)
                return -1
            values[~owned] = 0
        out[...] = values.astype(out.dtype)
    return -1
