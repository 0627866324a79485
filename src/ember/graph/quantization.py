"""Block quantization encodings of weights, as GGUF stores them.

>>> QuantizationEncoding.Q4_K.name, QuantizationEncoding.Q4_K.block_parameters
('q4_k', BlockParameters(elements_per_block=256, block_size=144))
>>> QuantizationEncoding.Q6_K.row_bytes(4096)
3360
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ember.quant import FORMATS

__all__ = ["BlockParameters", "QuantizationEncoding"]


@dataclass(frozen=True)
class BlockParameters:
    """`elements_per_block` values are stored in `block_size` bytes."""

    elements_per_block: int
    block_size: int


class _Encoding(enum.Enum):
    """MAX's encodings first, then every other block format of `ember.quant.FORMATS`."""

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
        params = _BLOCKS.get(self)  # type: ignore[call-overload]
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


_MAX_FIRST = ("Q4_0", "Q4_K", "Q5_K", "Q6_K", "GPTQ")
"""MAX's members, in its order; GPTQ is a linear-layer format with no row blocks."""

QuantizationEncoding = _Encoding(
    "QuantizationEncoding",
    [(n, n) for n in _MAX_FIRST]
    + [(f.name.upper(),) * 2 for f in FORMATS.values() if f.name.upper() not in _MAX_FIRST],
    module=__name__,
    qualname="QuantizationEncoding",
)
"""A member per block format of the registry (`ember.quant.FORMATS`), and GPTQ."""

_BLOCKS = {
    QuantizationEncoding[f.name.upper()]: BlockParameters(f.block_elements, f.block_bytes)
    for f in FORMATS.values()
}
