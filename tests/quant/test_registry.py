"""`ember.quant.FORMATS` is the one table of block formats: GGUF's ids and sizes, the graph's
encodings and both backends' dispatch all agree with it."""

from __future__ import annotations

import gguf
import pytest

from ember.engine.backends.native.kernels.compiled.decoders import ROW_DECODERS as NATIVE_DISPATCH
from ember.graph import QuantizationEncoding
from ember.quant import BY_GGML_TYPE, FORMATS, PLAIN_GGML_TYPES


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_format_matches_gguf(name):
    fmt = FORMATS[name]
    ggml = gguf.GGMLQuantizationType(fmt.ggml_type)
    assert ggml.name.lower() == name
    assert gguf.GGML_QUANT_SIZES[ggml] == (fmt.block_elements, fmt.block_bytes)
    assert BY_GGML_TYPE[fmt.ggml_type] is fmt


def test_plain_types_match_gguf():
    for type_id, dtype in PLAIN_GGML_TYPES.items():
        ggml = gguf.GGMLQuantizationType(type_id)
        assert gguf.GGML_QUANT_SIZES[ggml] == (1, dtype.to_numpy().itemsize), ggml


def test_encodings_are_the_formats_and_gptq():
    block = {e.name for e in QuantizationEncoding if e.is_gguf}
    assert block == set(FORMATS)
    assert [e.value for e in QuantizationEncoding][:5] == ["Q4_0", "Q4_K", "Q5_K", "Q6_K", "GPTQ"]
    for name, fmt in FORMATS.items():
        params = QuantizationEncoding[name.upper()].block_parameters
        assert (params.elements_per_block, params.block_size) == (
            fmt.block_elements,
            fmt.block_bytes,
        )


def test_compiled_decoders_are_registry_formats():
    """Compiled decoders exist for registry formats only; a format without one falls back to
    its reference decoder on both backends (tested in tests/native and tests/xla), and every
    lookup test runs every registry format on both."""
    assert set(NATIVE_DISPATCH) <= set(FORMATS)
    decode = pytest.importorskip("ember.engine.backends.xla.decode")
    assert set(decode.DECODERS) <= set(FORMATS)
