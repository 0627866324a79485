"""Row decoders: each registry format's row, uint8 blocks to float32, bit for bit as
``ember.quant``'s reference ``dequantize`` (hence ``gguf.quants.dequantize``, and torch's unpack
ops for the rowwise formats): the same float32 operations in the same order (numba compiles
without fast-math, so nothing is fused into an FMA but ROWWISE_INT8's one, which is torch's;
NaN payloads are unspecified there). Grouped by family as ``ember.quant`` groups the formats.

Each decoder is ``row(src, dst, f16)``: ``src`` one row's uint8 bytes, ``dst`` its float32
values, ``f16`` `bytes.F16_TO_F32`. Plain 1-D loops: numba vectorizes those; the same work
inlined over 2-D arrays ran several times slower.
"""

from __future__ import annotations

from numba import types
from numba.core.errors import TypingError
from numba.extending import overload

from ember.quant import FORMATS

from . import fp4, iquants, kquants, legacy, rowwise, ternary

__all__ = ["ROW_DECODERS", "decode_row"]

_FAMILIES = (legacy, kquants, iquants, ternary, fp4, rowwise)

ROW_DECODERS = {
    name: family.ROW_DECODERS[name]
    for name in FORMATS
    for family in _FAMILIES
    if name in family.ROW_DECODERS
}
"""Registry format name -> its compiled row decoder, in the registry's order. A format missing
here is decoded by its reference decoder (`reference_gather`)."""


def decode_row(fmt, src, dst, f16):
    """Decode one ``fmt`` row of ``src`` into ``dst``, in compiled code only, where ``fmt`` is
    a constant string (a kernel's closure variable): each kernel then compiles its own format's
    decoder alone."""
    raise NotImplementedError("decode_row runs in compiled kernels only")


@overload(decode_row, inline="always")
def _decode_row(fmt, src, dst, f16):
    if not isinstance(fmt, types.StringLiteral) or fmt.literal_value not in ROW_DECODERS:
        raise TypingError(f"decode_row takes a constant format name with a decoder, got {fmt}")
    row = ROW_DECODERS[fmt.literal_value]

    def decode(fmt, src, dst, f16):
        row(src, dst, f16)

    return decode
