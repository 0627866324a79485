"""The XLA decoders against ember.quant's numpy references, bit for bit (NaN payloads and signed
zeros included), under jax.jit, with and without x64."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from block_fields import F16_FIELDS, set_f16  # noqa: E402
from conftest import assert_same_bits  # noqa: E402

from ember.engine.backends.xla import decode as decode_module  # noqa: E402
from ember.engine.backends.xla.decode import DECODERS, HOST_DECODED, decode  # noqa: E402
from ember.quant import FORMATS, GGUF_FORMATS  # noqa: E402

NAMES = [name for name in GGUF_FORMATS if name in DECODERS]  # the host-decoded ones: tested below


# Byte offsets of each block's one-byte scales (E8M0 for MXFP4, UE4M3 for NVFP4): sane blocks
# draw them from SANE_BYTE_SCALES, edge blocks take every one of the 256 values at each.
BYTE_SCALES = {"mxfp4": [0], "nvfp4": [0, 1, 2, 3]}
SANE_BYTE_SCALES = {"mxfp4": (107, 148), "nvfp4": (0, 256)}

EDGE_F16 = [
    0x0000,  # +0
    0x8000,  # -0
    0x0001,  # smallest subnormal, 2**-24
    0x83FF,  # largest subnormal, negative
    0x3C00,  # 1
    0x7BFF,  # 65504
    0xFBFF,  # -65504
    0x7C00,  # inf
    0xFC00,  # -inf
    0x7E00,  # quiet NaN
    0xFE01,  # negative quiet NaN with a payload
    0x7C01,  # signalling NaN
]

jit_decode = jax.jit(decode, static_argnums=0)


def check(name: str, rows: np.ndarray) -> None:
    assert_same_bits(jit_decode(name, jnp.asarray(rows)), FORMATS[name].dequantize(rows))


def sane_blocks(name: str, n_blocks: int, seed: int) -> np.ndarray:
    """Random bytes with every fp16 field a finite value in [-2, 2]."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (n_blocks, FORMATS[name].block_bytes), dtype=np.uint8)
    for at in F16_FIELDS[name]:
        set_f16(blocks, at, rng.uniform(-2, 2, n_blocks).astype(np.float16).view(np.uint16))
    for at in BYTE_SCALES.get(name, []):
        blocks[:, at] = rng.integers(*SANE_BYTE_SCALES[name], n_blocks)
    return blocks


def edge_blocks(name: str, seed: int) -> np.ndarray:
    """Random bytes with every combination of edge values across the block's fp16 fields."""
    fields = F16_FIELDS[name]
    combos = np.array(list(itertools.product(EDGE_F16, repeat=len(fields))), np.uint16)
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (len(combos), FORMATS[name].block_bytes), dtype=np.uint8)
    for i, at in enumerate(fields):
        set_f16(blocks, at, combos[:, i])
    byte_fields = BYTE_SCALES.get(name, [])
    if byte_fields:  # every byte value at each scale byte (the formats have no fp16 field)
        blocks = rng.integers(0, 256, (256, FORMATS[name].block_bytes), dtype=np.uint8)
        for i, at in enumerate(byte_fields):
            blocks[:, at] = (np.arange(256) + 67 * i) % 256
    return blocks


def test_every_registry_format_has_a_decoder_or_is_declared_host_decoded():
    """A format added to the registry needs a jnp decoder here (or a deliberate fallback)."""
    assert not set(DECODERS) & HOST_DECODED
    assert set(DECODERS) | HOST_DECODED == set(FORMATS)


def test_a_decoder_for_no_registry_format_fails_at_import():
    with pytest.raises(ValueError, match=r"no registry format 'q9_9'.*known: q4_0"):
        decode_module._decodes("q9_9")


def test_iq1_m_scale_writer():
    blocks = np.zeros((len(EDGE_F16), FORMATS["iq1_m"].block_bytes), np.uint8)
    set_f16(blocks, "iq1_m", np.array(EDGE_F16, np.uint16))
    words = blocks[:, 48:56].copy().view("<u2")
    d_bits = sum((words[:, k] >> 12).astype(np.uint16) << (4 * k) for k in range(4))
    assert d_bits.tolist() == EDGE_F16


@pytest.mark.parametrize("name", NAMES)
def test_many_random_blocks(name):
    """Fully random bytes, NaN and inf scales included: NaN meets NaN, bit for bit."""
    rng = np.random.default_rng(9)
    check(name, rng.integers(0, 256, (512, FORMATS[name].block_bytes), dtype=np.uint8))


def test_mxfp4_subnormal_scales():
    """E8M0 bytes 0 and 1 are float32 subnormals, which XLA:CPU would flush in a product."""
    blocks = np.zeros((2, FORMATS["mxfp4"].block_bytes), np.uint8)
    blocks[:, 0] = [0, 1]
    blocks[:, 1:] = 0x91  # codes 1 (0.5) and 9 (-0.5)
    out = np.asarray(jit_decode("mxfp4", jnp.asarray(blocks)))
    assert out[0, 0] == 2.0**-128 and out[1, 16] == -(2.0**-127)
    check("mxfp4", blocks)


@pytest.mark.parametrize("name", NAMES)
def test_sane_scales(name):
    check(name, sane_blocks(name, 64, seed=1).reshape(8, -1))


@pytest.mark.parametrize("name", NAMES)
def test_edge_scales(name):
    check(name, edge_blocks(name, seed=2))


@pytest.mark.parametrize("name", NAMES)
def test_raw_random_bytes(name):
    rng = np.random.default_rng(3)
    check(name, rng.integers(0, 256, (16, 2 * FORMATS[name].block_bytes), dtype=np.uint8))


@pytest.mark.parametrize("name", NAMES)
def test_three_axes(name):
    rows = sane_blocks(name, 2 * 3 * 2, seed=4).reshape(2, 3, -1)
    out = jit_decode(name, jnp.asarray(rows))
    assert out.shape == (2, 3, 2 * FORMATS[name].block_elements)
    assert_same_bits(out, FORMATS[name].dequantize(rows))


@pytest.mark.parametrize("name", NAMES)
def test_x64(name):
    rows = np.concatenate([sane_blocks(name, 8, seed=5), edge_blocks(name, seed=6)])
    with jax.enable_x64(True):
        out = jax.jit(decode, static_argnums=0)(name, jnp.asarray(rows))
        assert out.dtype == jnp.float32
        assert_same_bits(out, FORMATS[name].dequantize(rows))


@pytest.mark.parametrize("name", NAMES)
def test_fused_with_gather(name):
    table = np.concatenate([sane_blocks(name, 6, seed=7), edge_blocks(name, seed=8)[:6]])
    table = table.reshape(6, -1)
    ids = np.array([[5, 0, 2], [2, 2, 1]], np.int32)

    @jax.jit
    def lookup(table, ids):
        return decode(name, jnp.take(table, ids, axis=0))

    assert_same_bits(
        lookup(jnp.asarray(table), jnp.asarray(ids)), FORMATS[name].dequantize(table[ids])
    )


def test_bad_inputs():
    with pytest.raises(ValueError, match="known"):
        decode("q9_9", jnp.zeros((1, 18), jnp.uint8))
    with pytest.raises(TypeError, match="uint8"):
        decode("q4_0", jnp.zeros((1, 18), jnp.int8))
    with pytest.raises(ValueError, match="18-byte"):
        decode("q4_0", jnp.zeros((1, 20), jnp.uint8))


def test_a_format_without_a_decoder_is_an_error_unless_declared(monkeypatch):
    """Undeclared: the lookup says what to write. Declared: the reference decoder runs on the
    host under jit, bit for bit the jnp decoder's."""
    rows = FORMATS["q6_k"].quantize(np.random.default_rng(0).standard_normal((3, 256)))
    table = jnp.asarray(rows)
    want = np.asarray(decode("q6_k", table))
    monkeypatch.delitem(DECODERS, "q6_k")
    with pytest.raises(NotImplementedError, match=r"q6_k has no XLA decoder.*HOST_DECODED"):
        decode("q6_k", table)
    monkeypatch.setattr(decode_module, "HOST_DECODED", frozenset({"q6_k"}))
    host = jax.jit(lambda r: decode("q6_k", r))(table)
    np.testing.assert_array_equal(np.asarray(host).view(np.uint32), want.view(np.uint32))
