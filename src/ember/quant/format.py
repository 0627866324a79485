"""What every block format shares: its size, its two conversions and the checks around them.

A format only writes two functions over 2-D arrays of whole blocks, ``decode(blocks)`` with
``blocks`` uint8 ``(n, block_bytes)`` giving float32 ``(n, block_elements)``, and ``encode`` the
other way; :func:`block_format` wraps them with the shape and dtype checks once, for all formats.

>>> fmt = block_format("toy", 99, 2, 1, lambda b: np.repeat(b, 2, 1).astype(np.float32),
...                    lambda x: x[:, :1].astype(np.uint8))
>>> fmt.dequantize(np.array([[3, 4]], np.uint8))
array([[3., 3., 4., 4.]], dtype=float32)
>>> row_bytes(fmt, 6), row_values(fmt, 3)
(3, 6)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import ml_dtypes
import numpy as np

__all__ = ["QuantFormat", "block_format", "read_f16", "row_bytes", "row_values", "write_f16"]

# Blocks converted per step: bounds the temporaries (a few times 4 MiB) on huge tables.
_CHUNK_ELEMENTS = 1 << 20

_FLOAT_INPUTS = (
    np.dtype(np.float16),
    np.dtype(np.float32),
    np.dtype(np.float64),
    np.dtype(ml_dtypes.bfloat16),
)


@dataclass(frozen=True)
class QuantFormat:
    """One quantization format: ``block_elements`` values stored in ``block_bytes`` bytes, and
    after a row's blocks ``row_tail_bytes`` more (a rowwise format's scale and bias; none for
    GGUF's block formats).

    ``dequantize(uint8 (..., row_bytes)) -> float32 (..., values)`` and ``quantize`` the reverse;
    both raise ``TypeError`` on a wrong dtype and ``ValueError`` when the last axis is not a
    whole row (for a block format, any whole number of blocks).
    """

    name: str
    ggml_type: int | None
    """The type id GGUF files give tensors of this format; None for the formats GGUF lacks."""
    block_elements: int
    block_bytes: int
    dequantize: Callable[[np.ndarray], np.ndarray]
    quantize: Callable[[np.ndarray], np.ndarray]
    not_written: str | None = field(default=None, kw_only=True)
    """Why ember only decodes this format (the grid i-quants, NVFP4) and what quantizes to it
    instead; `quantize` then raises NotImplementedError saying so. None: ember writes it."""
    row_tail_bytes: int = field(default=0, kw_only=True)
    """Bytes each row keeps after its values (`ember.quant.rowwise`: scale and bias)."""

    @property
    def quantizable(self) -> bool:
        """Whether `quantize` writes this format."""
        return self.not_written is None

    def __repr__(self) -> str:
        tail = f", then {self.row_tail_bytes} B a row" if self.row_tail_bytes else ""
        return (
            f"QuantFormat({self.name}: {self.block_elements} values in {self.block_bytes} B{tail})"
        )


def row_bytes(fmt: QuantFormat, hidden: int) -> int:
    """Bytes one row of ``hidden`` values takes in ``fmt``.

    Raises:
        ValueError: ``hidden`` is not a multiple of the format's block size (or, for a format
            with a row tail, not positive).
    """
    if hidden < (1 if fmt.row_tail_bytes else 0) or hidden % fmt.block_elements:
        raise ValueError(
            f"{fmt.name} stores blocks of {fmt.block_elements} values: a row of {hidden} "
            f"values is not a {'positive ' if fmt.row_tail_bytes else ''}multiple of "
            f"{fmt.block_elements}"
        )
    return hidden // fmt.block_elements * fmt.block_bytes + fmt.row_tail_bytes


def row_values(fmt: QuantFormat, nbytes: int) -> int:
    """Values one row of ``nbytes`` bytes holds in ``fmt``: the inverse of :func:`row_bytes`.

    Raises:
        ValueError: ``nbytes`` is not a whole row: a whole number of blocks, plus the row tail
            (and room for one block at least) where the format has one.
    """
    tail = fmt.row_tail_bytes
    if tail and nbytes < tail + fmt.block_bytes:
        raise ValueError(
            f"{fmt.name} rows end with {tail} bytes of scale and bias: a row of {nbytes} bytes "
            f"has no room for values (it needs {tail + fmt.block_bytes} bytes at least)"
        )
    if nbytes < 0 or (nbytes - tail) % fmt.block_bytes:
        after = f", then {tail} bytes" if tail else ""
        raise ValueError(
            f"{fmt.name} rows are whole blocks of {fmt.block_bytes} bytes{after}; "
            f"{nbytes} bytes is not a multiple of {fmt.block_bytes}"
        )
    return (nbytes - tail) // fmt.block_bytes * fmt.block_elements


def read_f16(blocks: np.ndarray, at: int) -> np.ndarray:
    """The little-endian fp16 at byte ``at`` of each block, as float32 of shape ``(n, 1)``."""
    raw = np.ascontiguousarray(blocks[:, at : at + 2])
    return raw.view("<f2").astype(np.float32)


def write_f16(values: np.ndarray) -> np.ndarray:
    """float32 ``(n, 1)`` rounded to fp16, as its two little-endian bytes ``(n, 2)``."""
    return np.ascontiguousarray(values, dtype="<f2").view(np.uint8).reshape(-1, 2)


def block_format(
    name: str,
    ggml_type: int,
    block_elements: int,
    block_bytes: int,
    decode: Callable[[np.ndarray], np.ndarray],
    encode: Callable[[np.ndarray], np.ndarray] | None,
    not_written: str | None = None,
) -> QuantFormat:
    """A :class:`QuantFormat` whose conversions check, reshape and chunk, then call
    ``decode``/``encode`` on 2-D arrays of whole blocks. With ``not_written`` (why ember does
    not quantize to it, and what does) there is no ``encode``: ``quantize`` raises
    NotImplementedError with that reason.

    Raises:
        ValueError: both an ``encode`` and a ``not_written`` reason, or neither.
    """
    if (encode is None) == (not_written is None):
        raise ValueError(f"{name}: give either an encode or a not_written reason, not both")

    def dequantize(blocks: np.ndarray) -> np.ndarray:
        blocks = np.asarray(blocks)
        if blocks.dtype != np.uint8:
            raise TypeError(f"{name} dequantize takes uint8 blocks, got {blocks.dtype}")
        width = _last_axis(blocks, name, block_bytes, "bytes")
        n_blocks = blocks.size // block_bytes
        flat = blocks.reshape(n_blocks, block_bytes)
        out = np.empty((n_blocks, block_elements), np.float32)
        step = max(1, _CHUNK_ELEMENTS // block_elements)
        with np.errstate(invalid="ignore", over="ignore"):  # inf/NaN scales decode to inf/NaN
            for start in range(0, n_blocks, step):
                out[start : start + step] = decode(flat[start : start + step])
        return out.reshape(*blocks.shape[:-1], width // block_bytes * block_elements)

    def quantize(values: np.ndarray) -> np.ndarray:
        if encode is None:
            raise NotImplementedError(f"ember does not quantize to {name.upper()}: {not_written}")
        values = np.asarray(values)
        if values.dtype not in _FLOAT_INPUTS:
            raise TypeError(f"{name} quantize takes float values, got {values.dtype}")
        width = _last_axis(values, name, block_elements, "values")
        n_blocks = values.size // block_elements
        flat = values.reshape(n_blocks, block_elements)
        out = np.empty((n_blocks, block_bytes), np.uint8)
        step = max(1, _CHUNK_ELEMENTS // block_elements)
        with np.errstate(all="ignore"):  # 1 / d past float32 in tiny blocks, inf and NaN in
            for start in range(0, n_blocks, step):  # bad ones: each format says what it writes
                out[start : start + step] = encode(flat[start : start + step].astype(np.float32))
        return out.reshape(*values.shape[:-1], width // block_elements * block_bytes)

    dequantize.__doc__ = (
        f"uint8 {name} blocks (..., k*{block_bytes}) -> float32 (..., k*{block_elements})."
    )
    quantize.__doc__ = (
        f"float (..., k*{block_elements}) -> uint8 {name} blocks (..., k*{block_bytes})."
    )
    dequantize.__name__ = f"dequantize_{name}"
    quantize.__name__ = f"quantize_{name}"
    return QuantFormat(
        name, ggml_type, block_elements, block_bytes, dequantize, quantize, not_written=not_written
    )


def _last_axis(array: np.ndarray, name: str, multiple: int, unit: str) -> int:
    if array.ndim == 0:
        raise ValueError(f"{name} needs at least one axis of {unit}, got a scalar")
    width = array.shape[-1]
    if width % multiple:
        raise ValueError(
            f"{name}: the last axis holds {width} {unit}, not a multiple of {multiple} "
            f"(one {name} block)"
        )
    return width
