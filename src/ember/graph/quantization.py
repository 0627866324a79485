"""Quantization encodings of weights: GGUF's block formats and PyTorch's rowwise ones.

>>> QuantizationEncoding.Q4_K.name, QuantizationEncoding.Q4_K.block_parameters
('q4_k', BlockParameters(elements_per_block=256, block_size=144))
>>> QuantizationEncoding.Q6_K.row_bytes(4096)
3360
>>> int4 = QuantizationEncoding.ROWWISE_INT4
>>> int4.row_bytes(128), int4.hidden_size(68)
(68, 128)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ember.quant import FORMATS, GGUF_FORMATS, QuantFormat, row_values

__all__ = ["BlockParameters", "QuantizationEncoding"]


@dataclass(frozen=True)
class BlockParameters:
    """`elements_per_block` values are stored in `block_size` bytes."""

    elements_per_block: int
    block_size: int


class _Encoding(enum.Enum):
    """MAX's encodings first, then every other format of `ember.quant.FORMATS`."""

    @property
    def name(self) -> str:  # type: ignore[override]
        """Lowercase, as MAX spells it and as `ember.quant.FORMATS` keys it."""
        return self.value.lower()

    @property
    def is_gguf(self) -> bool:
        """A format GGUF files store (not GPTQ, not a rowwise one)."""
        return self.name in GGUF_FORMATS

    @property
    def is_rowwise(self) -> bool:
        """A row holds its values, then its scale and bias (`ember.quant.rowwise`)."""
        fmt = FORMATS.get(self.name)
        return fmt is not None and fmt.row_tail_bytes > 0

    @property
    def block_parameters(self) -> BlockParameters:
        """Raises ValueError for GPTQ, whose groups belong to a linear layer, not a table, and
        for the rowwise formats, whose rows are not whole blocks (`row_bytes`, `hidden_size`)."""
        fmt = self._format()
        if fmt.row_tail_bytes:
            raise ValueError(
                f"{self.value} rows are not whole blocks: each holds its values, then a scale "
                "and a bias; use row_bytes(hidden) and hidden_size(row_bytes)"
            )
        return BlockParameters(fmt.block_elements, fmt.block_bytes)

    @property
    def elements_per_block(self) -> int:
        return self.block_parameters.elements_per_block

    @property
    def block_size(self) -> int:
        return self.block_parameters.block_size

    def row_bytes(self, hidden: int) -> int:
        """Bytes of one quantized row of `hidden` values.

        Raises:
            ValueError: `hidden` is not a whole number of blocks (for a rowwise format, of
                values a byte holds).
        """
        fmt = self._format()
        per_block = fmt.block_elements
        if hidden <= 0 or hidden % per_block:
            unit = "per byte" if fmt.row_tail_bytes else "per block"
            raise ValueError(
                f"{self.value} stores {per_block} values {unit}; a row of {hidden} values "
                f"is not a positive multiple of {per_block}"
            )
        return hidden // per_block * fmt.block_bytes + fmt.row_tail_bytes

    def hidden_size(self, row_bytes: int) -> int:
        """Values in a quantized row of `row_bytes` bytes.

        Raises:
            ValueError: `row_bytes` is not a whole number of blocks, or for a rowwise format
                leaves no room for values beside the scale and bias.
        """
        fmt = self._format()
        if fmt.row_tail_bytes:
            return row_values(fmt, row_bytes)
        size = fmt.block_bytes
        if row_bytes <= 0 or row_bytes % size:
            raise ValueError(
                f"{self.value} blocks are {size} bytes ({fmt.block_elements} values); "
                f"a row of {row_bytes} bytes is not a positive multiple of {size}"
            )
        return row_bytes // size * fmt.block_elements

    def describe_row(self, row_bytes: int) -> str:
        """How a row of `row_bytes` bytes holds its values, for error messages."""
        fmt = self._format()
        if fmt.row_tail_bytes:
            scales = "float32" if fmt.row_tail_bytes == 8 else "float16"
            return f"{self.hidden_size(row_bytes)} values, then a {scales} scale and bias"
        return (
            f"{row_bytes // fmt.block_bytes} blocks of {fmt.block_bytes} bytes, "
            f"{self.hidden_size(row_bytes)} values"
        )

    def _format(self) -> QuantFormat:
        """The registry format; ValueError for GPTQ, which has none."""
        fmt = FORMATS.get(self.name)
        if fmt is None:
            raise ValueError(
                f"{self.value} is a linear-layer format (column groups with a separate scale "
                "and zero-point tensor); it has no rows of its own, so it cannot encode an "
                f"embedding table; use one of {', '.join(f.upper() for f in FORMATS)}"
            )
        return fmt


_MAX_FIRST = ("Q4_0", "Q4_K", "Q5_K", "Q6_K", "GPTQ")
"""MAX's members, in its order; GPTQ is a linear-layer format with no row blocks."""

QuantizationEncoding = _Encoding(
    "QuantizationEncoding",
    [(n, n) for n in _MAX_FIRST]
    + [(f.name.upper(),) * 2 for f in FORMATS.values() if f.name.upper() not in _MAX_FIRST],
    module=__name__,
    qualname="QuantizationEncoding",
)
"""A member per format of the registry (`ember.quant.FORMATS`), and GPTQ."""
