"""Block quantization encodings of weights, as GGUF stores them.

>>> QuantizationEncoding.Q4_K.name, QuantizationEncoding.Q4_K.block_parameters
('q4_k', BlockParameters(elements_per_block=256, block_size=144))
>>> QuantizationEncoding.Q6_K.row_bytes(4096)
3360
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["BlockParameters", "QuantizationEncoding"]


@dataclass(frozen=True)
class BlockParameters:
    """`elements_per_block` values are stored in `block_size` bytes."""

    elements_per_block: int
    block_size: int


class QuantizationEncoding(enum.Enum):
    """MAX's encodings first, then the other GGUF block formats Ember reads."""

    Q4_0 = "Q4_0"
    Q4_K = "Q4_K"
    Q5_K = "Q5_K"
    Q6_K = "Q6_K"
    GPTQ = "GPTQ"
    Q4_1 = "Q4_1"
    Q5_0 = "Q5_0"
    Q5_1 = "Q5_1"
    Q8_0 = "Q8_0"
    Q2_K = "Q2_K"
    Q3_K = "Q3_K"

    @property
    def name(self) -> str:  # type: ignore[override]
        """Lowercase, as MAX spells it and as `ember.quant.FORMATS` keys it."""
        return self.value.lower()

    @property
    def is_gguf(self) -> bool:
        return self is not QuantizationEncoding.GPTQ

    @property
    def block_parameters(self) -> BlockParameters:
        """Raises ValueError for GPTQ, whose groups belong to a linear layer, not a table."""
        params = _BLOCKS.get(self)
        if params is None:
            raise ValueError(
                f"{self.value} is a linear-layer format (column groups with a separate scale "
                "and zero-point tensor); it has no row blocks, so it cannot encode an embedding "
                f"table; use one of {', '.join(e.value for e in _BLOCKS)}"
            )
        return params

    @property
    def elements_per_block(self) -> int:
        return self.block_parameters.elements_per_block

    @property
    def block_size(self) -> int:
        return self.block_parameters.block_size

    def row_bytes(self, hidden: int) -> int:
        """Bytes of one quantized row of `hidden` values.

        Raises:
            ValueError: `hidden` is not a whole number of blocks.
        """
        per_block = self.elements_per_block
        if hidden <= 0 or hidden % per_block:
            raise ValueError(
                f"{self.value} stores {per_block} values per block; a row of {hidden} values "
                f"is not a positive multiple of {per_block}"
            )
        return hidden // per_block * self.block_size

    def hidden_size(self, row_bytes: int) -> int:
        """Values in a quantized row of `row_bytes` bytes.

        Raises:
            ValueError: `row_bytes` is not a whole number of blocks.
        """
        size = self.block_size
        if row_bytes <= 0 or row_bytes % size:
            raise ValueError(
                f"{self.value} blocks are {size} bytes ({self.elements_per_block} values); "
                f"a row of {row_bytes} bytes is not a positive multiple of {size}"
            )
        return row_bytes // size * self.elements_per_block


_BLOCKS = {
    QuantizationEncoding.Q4_0: BlockParameters(32, 18),
    QuantizationEncoding.Q4_1: BlockParameters(32, 20),
    QuantizationEncoding.Q5_0: BlockParameters(32, 22),
    QuantizationEncoding.Q5_1: BlockParameters(32, 24),
    QuantizationEncoding.Q8_0: BlockParameters(32, 34),
    QuantizationEncoding.Q2_K: BlockParameters(256, 84),
    QuantizationEncoding.Q3_K: BlockParameters(256, 110),
    QuantizationEncoding.Q4_K: BlockParameters(256, 144),
    QuantizationEncoding.Q5_K: BlockParameters(256, 176),
    QuantizationEncoding.Q6_K: BlockParameters(256, 210),
}
