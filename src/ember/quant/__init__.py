"""Quantization formats: GGUF's block formats and PyTorch's rowwise ones (`rowwise`), their byte
layouts, reference dequantize and quantize (numpy).

These are the readable references; fast kernels live in the backends and are tested against
them, and these are tested bit for bit against ``gguf.quants.dequantize`` (the rowwise ones
against torch's prepack and unpack ops).

A new block format needs:

1. its registry entry: a ``block_format(...)`` in its family's module (``legacy``, ``kquants``,
   ``iquants``, ``ternary``, ``fp4``; ``rowwise_format`` in ``rowwise``) and its place in
   :data:`FORMATS`; the graph's
   ``QuantizationEncoding``, the checkpoint readers, the CLI and the benchmarks follow;
2. its reference decoder and quantizer there, numpy (for decode only, no quantizer and a
   ``not_written`` reason);
3. its native row decoder in ``ember.engine.backends.native.kernels``;
4. its XLA decoder in ``ember.engine.backends.xla.decode``, marked ``@_decodes(name)`` (or its
   name in that module's ``HOST_DECODED``, to decode on the host);
5. its entry in ``tests/block_fields.py``'s ``F16_FIELDS`` and, if it quantizes, its error
   bounds in ``tests/quant/test_quantize.py``'s ``BOUNDS``.

Every test, benchmark and table over formats takes its list from :data:`FORMATS`, so the tests
fail until each of these is there.

>>> import numpy as np
>>> fmt = get_format("Q4_K")
>>> fmt.block_elements, fmt.block_bytes, row_bytes(fmt, 4096)
(256, 144, 2304)
>>> fmt.dequantize(np.zeros((3, 2304), np.uint8)).shape
(3, 4096)
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping

from .format import QuantFormat, row_bytes, row_values
from .fp4 import MXFP4, NVFP4
from .iquants import IQ1_M, IQ1_S, IQ2_S, IQ2_XS, IQ2_XXS, IQ3_S, IQ3_XXS, IQ4_NL, IQ4_XS
from .kquants import Q2_K, Q3_K, Q4_K, Q5_K, Q6_K
from .legacy import Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
from .plain import PLAIN_GGML_TYPES
from .rowwise import ROWWISE_INT2, ROWWISE_INT4, ROWWISE_INT8
from .ternary import TQ1_0, TQ2_0

__all__ = [
    "BY_GGML_TYPE",
    "FORMATS",
    "GGUF_FORMATS",
    "PLAIN_GGML_TYPES",
    "FormatRegistry",
    "QuantFormat",
    "get_format",
    "row_bytes",
    "row_values",
]


class FormatRegistry(Mapping[str, QuantFormat]):
    """A read-only mapping of formats, keyed by their lowercase names and found by a name of
    any case ("Q4_K"), a `QuantizationEncoding` or a `QuantFormat`; an unknown key's KeyError
    lists the known ones."""

    def __init__(self, formats: Iterable[QuantFormat]) -> None:
        self._formats = {fmt.name: fmt for fmt in formats}

    def __getitem__(self, key: object) -> QuantFormat:
        fmt = self.get(key)
        if fmt is None:
            raise KeyError(f"unknown quantization format {key!r}; known: {', '.join(self)}")
        return fmt

    def get(self, key: object, default: QuantFormat | None = None) -> QuantFormat | None:  # type: ignore[override]
        if type(key) is str:  # the registry's own spelling first: kernels look names up per call
            fmt = self._formats.get(key)
            if fmt is not None:
                return fmt
        return self._formats.get(_name_of(key), default)

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._formats)

    def __len__(self) -> int:
        return len(self._formats)

    def __repr__(self) -> str:
        return f"FormatRegistry({', '.join(self)})"


def _name_of(key: object) -> str | None:
    """A registry key: a name in lowercase, a registry format's, or an encoding's (an enum
    member whose `name` is its string value in lowercase, as `QuantizationEncoding`'s);
    None for anything else."""
    if isinstance(key, str):
        return key.lower()
    if isinstance(key, QuantFormat):
        return key.name if FORMATS.get(key.name) is key else None
    if isinstance(key, enum.Enum) and isinstance(key.value, str) and key.value.lower() == key.name:
        return key.name
    return None


FORMATS = FormatRegistry(
    (
        *(Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K),
        *(IQ4_NL, IQ4_XS, IQ3_XXS, IQ3_S, IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M),
        *(TQ1_0, TQ2_0, MXFP4, NVFP4),
        *(ROWWISE_INT8, ROWWISE_INT4, ROWWISE_INT2),
    )
)
"""The one registry of quantization formats: everything else (encodings, kernels' dispatch,
tests, benchmarks, checkpoint readers) derives its list from it."""

GGUF_FORMATS = FormatRegistry(fmt for fmt in FORMATS.values() if fmt.ggml_type is not None)
"""The formats GGUF files store (all but the rowwise ones), in the registry's order."""

BY_GGML_TYPE: dict[int, QuantFormat] = {fmt.ggml_type: fmt for fmt in GGUF_FORMATS.values()}


def get_format(name: str) -> QuantFormat:
    """The format called ``name`` (any case: "q4_k", "Q4_K").

    Raises:
        ValueError: no such format; the message lists the known ones.
    """
    fmt = FORMATS.get(name)
    if fmt is None:
        raise ValueError(f"unknown quantization format {name!r}; known: {', '.join(FORMATS)}")
    return fmt
