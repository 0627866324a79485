"""`ember.quant.FORMATS` is the one table of formats: GGUF's ids and sizes, the graph's
encodings, both backends' dispatch and the README all agree with it."""

from __future__ import annotations

import dataclasses
import enum
import pathlib
import re

import gguf
import pytest

from ember.engine.backends.native.kernels.compiled.decoders import ROW_DECODERS as NATIVE_DISPATCH
from ember.graph import QuantizationEncoding
from ember.quant import (
    BY_GGML_TYPE,
    FORMATS,
    GGUF_FORMATS,
    PLAIN_GGML_TYPES,
    get_format,
    row_bytes,
    row_values,
)

README = pathlib.Path(__file__).parents[2] / "README.md"


@pytest.mark.parametrize("name", list(GGUF_FORMATS))
def test_each_format_matches_gguf(name):
    fmt = FORMATS[name]
    ggml = gguf.GGMLQuantizationType(fmt.ggml_type)
    assert ggml.name.lower() == name
    assert gguf.GGML_QUANT_SIZES[ggml] == (fmt.block_elements, fmt.block_bytes)
    assert BY_GGML_TYPE[fmt.ggml_type] is fmt


def test_formats_are_found_by_any_case_or_encoding():
    assert FORMATS["Q4_K"] is FORMATS["q4_k"] is FORMATS[QuantizationEncoding.Q4_K]
    assert "Q6_K" in FORMATS and QuantizationEncoding.ROWWISE_INT8 in FORMATS
    assert QuantizationEncoding.ROWWISE_INT8 not in GGUF_FORMATS
    assert GGUF_FORMATS.get("IQ4_XS") is FORMATS["iq4_xs"] and FORMATS.get("q7_k") is None
    assert list(FORMATS)[:2] == ["q4_0", "q4_1"]  # keys stay the lowercase names
    assert FORMATS[FORMATS["q8_0"]] is FORMATS["q8_0"]
    lookalike = dataclasses.replace(FORMATS["q4_0"], quantize=None)  # not the registry's

    class Other(enum.Enum):
        q4_0 = 1

    for unknown in ("q7_k", QuantizationEncoding.GPTQ, 3, [1], pathlib.Path("q4_k"), lookalike,
                    Other.q4_0):  # fmt: skip
        assert unknown not in FORMATS
        with pytest.raises(KeyError, match=r"unknown quantization format .*known: q4_0, q4_1"):
            FORMATS[unknown]
    with pytest.raises(TypeError):  # one registry, read-only: no second spelling gets in
        FORMATS["Q4_K"] = FORMATS["q4_k"]


def test_a_format_has_an_encoder_or_a_reason_not_to_write_it():
    from ember.quant.format import block_format

    def decode(blocks):
        return blocks.astype("float32")

    for encode, reason in ((None, None), (decode, "no")):
        with pytest.raises(ValueError, match="either an encode or a not_written reason"):
            block_format("x", 0, 1, 1, decode, encode, reason)


def test_get_format_any_case_and_unknown():
    assert get_format("Q4_K") is FORMATS["q4_k"]
    with pytest.raises(ValueError, match=r"known: q4_0, q4_1.*nvfp4"):
        get_format("q7_k")


def test_row_bytes():
    assert row_bytes(FORMATS["q4_k"], 4096) == 16 * 144
    assert row_bytes(FORMATS["q8_0"], 64) == 68
    with pytest.raises(ValueError, match=r"q4_k.*256"):
        row_bytes(FORMATS["q4_k"], 4000)


def test_rowwise_formats_have_no_gguf_type_and_a_row_tail():
    rowwise = [name for name in FORMATS if name not in GGUF_FORMATS]
    assert rowwise == ["rowwise_int8", "rowwise_int4", "rowwise_int2"]
    assert None not in BY_GGML_TYPE
    assert list(GGUF_FORMATS) == list(FORMATS)[: len(GGUF_FORMATS)]
    for name, values_per_byte, tail in zip(rowwise, (1, 2, 4), (8, 4, 4), strict=True):
        fmt = FORMATS[name]
        assert (fmt.ggml_type, fmt.block_elements, fmt.block_bytes) == (None, values_per_byte, 1)
        assert fmt.row_tail_bytes == tail
        assert row_bytes(fmt, 128) == 128 // values_per_byte + tail
        assert row_values(fmt, 128 // values_per_byte + tail) == 128
        with pytest.raises(ValueError, match=rf"{name}.*no room for values"):
            row_values(fmt, tail)
    with pytest.raises(ValueError, match=r"rowwise_int4.*5 values.*multiple of 2"):
        row_bytes(FORMATS["rowwise_int4"], 5)
    assert all(fmt.row_tail_bytes == 0 for fmt in GGUF_FORMATS.values())
    assert row_values(FORMATS["q4_k"], 288) == 512


def test_plain_types_match_gguf():
    for type_id, dtype in PLAIN_GGML_TYPES.items():
        ggml = gguf.GGMLQuantizationType(type_id)
        assert gguf.GGML_QUANT_SIZES[ggml] == (1, dtype.to_numpy().itemsize), ggml


def test_encodings_are_the_formats_and_gptq():
    block = {e.name for e in QuantizationEncoding if e.is_gguf}
    assert block == set(GGUF_FORMATS)
    every = [e.name for e in QuantizationEncoding if e is not QuantizationEncoding.GPTQ]
    assert set(every) == set(FORMATS)
    assert [e.value for e in QuantizationEncoding][:5] == ["Q4_0", "Q4_K", "Q5_K", "Q6_K", "GPTQ"]
    assert [e.name for e in QuantizationEncoding if e.is_rowwise] == [
        "rowwise_int8",
        "rowwise_int4",
        "rowwise_int2",
    ]
    for name, fmt in GGUF_FORMATS.items():
        params = QuantizationEncoding[name.upper()].block_parameters
        assert (params.elements_per_block, params.block_size) == (
            fmt.block_elements,
            fmt.block_bytes,
        )


def test_every_format_has_compiled_decoders():
    """Both backends decode every registry format at full speed: natively a format without a
    compiled decoder would run its reference decoder; on XLA one must be declared host-decoded
    (tests/xla/test_decode.py). Every lookup test runs every registry format on both."""
    assert set(NATIVE_DISPATCH) == set(FORMATS)
    decode = pytest.importorskip("ember.engine.backends.xla.decode")
    assert set(decode.DECODERS) | decode.HOST_DECODED == set(FORMATS)


def test_readme_names_every_format_and_their_count():
    text = README.read_text()
    listed = re.search(r"Every block type the `gguf` package dequantizes:(.*?):", text, re.S)
    assert listed, "the README's list of block formats moved"
    gguf_names = [n.upper() for n in GGUF_FORMATS]
    assert re.findall(r"\b[A-Z][A-Z0-9_]+\b", listed.group(1)) == gguf_names
    rowwise = re.search(r"Rowwise-quantized rows as PyTorch stores them:(.*?)\(", text, re.S)
    assert rowwise, "the README's list of rowwise formats moved"
    rowwise_names = [n.upper() for n in FORMATS if n not in GGUF_FORMATS]
    assert re.findall(r"\b[A-Z][A-Z0-9_]+\b", rowwise.group(1)) == rowwise_names
    counts = re.findall(r"all (\w+)\s+(?:block|quantized) formats", text)
    assert counts and set(counts) == {str(len(GGUF_FORMATS))}, counts
