"""Sample tables of any registry format, for tests, benchmarks and trying things out.

>>> sample_table("q4_k", rows=2, values_per_row=512).shape, sample_table("iq2_xs", 2, 256).shape
((2, 288), (2, 74))
"""

from __future__ import annotations

import numpy as np

from .format import QuantFormat

__all__ = ["sample_table"]


def sample_table(
    fmt: QuantFormat | str, rows: int, values_per_row: int, seed: int = 0
) -> np.ndarray:
    """uint8 rows of `fmt`'s blocks: standard normal data quantized where ember quantizes the
    format; for decode-only formats (the grid i-quants, NVFP4), random blocks kept only where
    every value they decode to is finite.

    Raises:
        ValueError: `values_per_row` is not a whole number of blocks, or an unknown format.
    """
    if isinstance(fmt, str):
        from . import get_format

        fmt = get_format(fmt)
    if values_per_row % fmt.block_elements:
        raise ValueError(
            f"{fmt.name} blocks hold {fmt.block_elements} values; {values_per_row} do not divide"
        )
    rng = np.random.default_rng(seed)
    if fmt.quantizable:
        return fmt.quantize(rng.standard_normal((rows, values_per_row)).astype(np.float32))
    count = rows * values_per_row // fmt.block_elements
    blocks = np.zeros((0, fmt.block_bytes), np.uint8)
    while len(blocks) < count:
        candidates = rng.integers(0, 256, (2 * count + 16, fmt.block_bytes), dtype=np.uint8)
        with np.errstate(all="ignore"):
            finite = np.isfinite(fmt.dequantize(candidates)).all(axis=1)
        blocks = np.concatenate([blocks, candidates[finite]])
    return blocks[:count].reshape(rows, -1)
