"""GGUF block decoders and the rowwise ones in jax.numpy, for the XLA backend.

Written as plain elementwise jnp so that, traced inside a jitted lookup right after the
``jnp.take`` of table rows, XLA fuses the decode with the gather: only the gathered rows are ever
decoded, and no float table is materialized (XLA:CPU copies the gathered bytes once, then runs
the whole decode as one loop fusion). The results are bit for bit those of
``ember.quant``'s numpy references (``FORMATS[name].dequantize``), NaN payloads and signed zeros
included, with or without ``jax_enable_x64``; see that package for the byte layouts.

Bit-exactness and fused multiply-add: XLA:CPU lets LLVM contract ``a * b + c`` into an FMA
(no flag but ``--xla_cpu_max_isa`` below AVX2 turns it off, and neither ``reduce_precision``
nor ``optimization_barrier`` stops it). The finite results are exact anyway, because the one
product an add or subtract follows, ``(d * sc) * q`` (or ``d * q``), is exact in float32: an fp16
scale has 11 significant bits, a sub-block scale at most 6 and a level at most 5, so 22 bits at
most, and fp16's range can neither overflow nor reach float32 subnormals; rounding the product
first or not gives the same sum. (Q6_K's product has up to 25 bits, but no add follows.) NaNs
are not: an FMA gives ``inf * 0 - NaN`` the minimum's NaN where numpy keeps the product's
default NaN, so :func:`_nan_first` picks the product's NaN explicitly.

Denormals: XLA:CPU flushes float32 subnormals to zero, as inputs and as results of arithmetic.
No scale or product here is subnormal except MXFP4's (E8M0 bytes 0 and 1 are 2**-128 and
2**-127), so MXFP4 reads its products' bits from a table instead of multiplying, and
ROWWISE_INT8's, whose float32 scale and bias may be anything: its values are exact where no
float32 subnormal arises (scales and biases above 2**-100 or zero).

ROWWISE_INT8 rounds ``q * scale + bias`` once, as torch's FMA does, whether or not XLA contracts
it: the scale is split into two parts whose products with an 8-bit level are exact, and the
three exact terms are summed correctly rounded (:func:`_sum3`).

Each decoder enters :data:`DECODERS` under its registry format's name with ``@_decodes``; the
table formats read their tables from :mod:`ember.quant.grids`. Every registry format has one
today; a format meant to decode on the host instead is named in :data:`HOST_DECODED`.

>>> import numpy as np
>>> rows = np.zeros((2, 3, 2 * 18), np.uint8)
>>> rows[..., 1] = 0x3C  # d = 1.0 in the first block of each row
>>> decode("q4_0", jnp.asarray(rows)).shape
(2, 3, 64)
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ember.quant import FORMATS, QuantFormat, row_values
from ember.quant.grids import (
    BYTE_SIGNS,
    E8M0_HALF,
    FP4_E2M1_X2,
    GRIDS_F32,
    IQ4NL_VALUES,
    KSIGN_PATTERNS,
    UE4M3_HALF,
)

__all__ = ["DECODERS", "HOST_DECODED", "decode", "host_decode"]

BlocksDecoder = Callable[[jax.Array], jax.Array]
"""uint8 ``(n, block_bytes)`` -> float32 ``(n, block_elements)``."""

QK_K = 256


# ---- the table: one decoder per registry format ---------------------------------------------

DECODERS: dict[str, Callable[[jax.Array], jax.Array]] = {}
"""Registry format name (as ``ember.quant.FORMATS`` keys it) -> its decoder of rows, each
entered by :func:`_decodes` above the function it lifts."""

HOST_DECODED: frozenset[str] = frozenset()
"""Registry formats decoded on the host by design (:func:`host_decode`): none today. A format
in neither this nor :data:`DECODERS` fails its first XLA lookup, and tests/xla/test_decode.py."""


def _decodes(name: str) -> Callable[[BlocksDecoder], BlocksDecoder]:
    """Enter the decorated ``(n, block_bytes)`` blocks decoder as registry format ``name``'s,
    lifted to rows; an unknown ``name`` fails at import."""
    fmt = FORMATS.get(name)
    if fmt is None:
        raise ValueError(f"no registry format {name!r} to decode; known: {', '.join(FORMATS)}")

    def enter(blocks_fn: BlocksDecoder) -> BlocksDecoder:
        DECODERS[name] = (_on_whole_rows if fmt.row_tail_bytes else _on_rows)(fmt, blocks_fn)
        return blocks_fn

    return enter


def _on_rows(fmt: QuantFormat, blocks_fn: BlocksDecoder) -> Callable[[jax.Array], jax.Array]:
    """``blocks_fn`` on ``(n, block_bytes)`` lifted to rows ``(..., k * block_bytes)``."""
    name, block_bytes, block_elements = fmt.name, fmt.block_bytes, fmt.block_elements

    def decoder(rows: jax.Array) -> jax.Array:
        rows = jnp.asarray(rows)
        if rows.dtype != jnp.uint8:
            raise TypeError(f"{name} decode takes uint8 rows, got {rows.dtype}")
        if rows.ndim == 0 or rows.shape[-1] % block_bytes:
            raise ValueError(
                f"{name}: rows of shape {rows.shape} are not whole {block_bytes}-byte blocks"
            )
        width = rows.shape[-1] // block_bytes * block_elements
        if rows.size == 0:  # no blocks: the unpacking's reshapes cannot infer a size from 0
            return jnp.zeros((*rows.shape[:-1], width), jnp.float32)
        values = blocks_fn(rows.reshape(-1, block_bytes))
        return values.reshape(*rows.shape[:-1], width)

    decoder.__name__ = decoder.__qualname__ = f"decode_{name}"
    decoder.__doc__ = (
        f"uint8 {name} rows (..., k*{block_bytes}) -> float32 (..., k*{block_elements})."
    )
    return decoder


def _on_whole_rows(
    fmt: QuantFormat, rows_fn: Callable[[jax.Array], jax.Array]
) -> Callable[[jax.Array], jax.Array]:
    """A rowwise format's ``rows_fn`` on ``(n, row_bytes)`` lifted to rows of any leading
    shape: a rowwise row is its own block, its scale and bias at its end."""
    name = fmt.name

    def decoder(rows: jax.Array) -> jax.Array:
        rows = jnp.asarray(rows)
        if rows.dtype != jnp.uint8:
            raise TypeError(f"{name} decode takes uint8 rows, got {rows.dtype}")
        if rows.ndim == 0:
            raise ValueError(f"{name} decode takes rows of bytes, got a scalar")
        width = row_values(fmt, rows.shape[-1])
        if rows.size == 0:  # no rows: the unpacking's reshapes cannot infer a size from 0
            return jnp.zeros((*rows.shape[:-1], width), jnp.float32)
        values = rows_fn(rows.reshape(-1, rows.shape[-1]))
        return values.reshape(*rows.shape[:-1], width)

    decoder.__name__ = decoder.__qualname__ = f"decode_{name}"
    decoder.__doc__ = f"uint8 {name} rows (..., row_bytes) -> float32 (..., values)."
    return decoder


# ---- unpacking ------------------------------------------------------------------------------


def _fields(field: jax.Array, width: int, run: int) -> jax.Array:
    """Unsigned ``width``-bit fields of ``(n, bytes)``, in runs of ``run`` bytes: each run gives
    its bytes' lowest fields, then their next ones, ..., as ``(n, bytes * 8 // width)`` uint8."""
    n = field.shape[0]
    shifts = jnp.arange(0, 8, width, dtype=jnp.uint8)[:, None]
    return ((field.reshape(n, -1, 1, run) >> shifts) & ((1 << width) - 1)).reshape(n, -1)


def _nibbles(field: jax.Array, run: int) -> jax.Array:
    """4-bit values: runs of ``run`` bytes give ``run`` low nibbles, then ``run`` high ones."""
    return _fields(field, 4, run)


def _crumbs(field: jax.Array) -> jax.Array:
    """2-bit values: value ``128h + 32s + j`` is bits ``2s, 2s+1`` of byte ``32h + j``."""
    return _fields(field, 2, 32)


def _bits(field: jax.Array) -> jax.Array:
    """1-bit values of 32 bytes: value ``32b + j`` is bit ``b`` of byte ``j``."""
    return _fields(field, 1, 32)


def _f16(blocks: jax.Array, at: int) -> jax.Array:
    """The little-endian fp16 at byte ``at`` of each block, as float32 ``(n, 1)``."""
    raw = blocks[:, at : at + 2].astype(jnp.uint16)
    bits = raw[:, 0:1] | (raw[:, 1:2] << 8)
    return lax.bitcast_convert_type(bits, jnp.float16).astype(jnp.float32)


def _int8(field: jax.Array) -> jax.Array:
    """Bytes read as int8, as float32."""
    return lax.bitcast_convert_type(field, jnp.int8).astype(jnp.float32)


def _float(values: jax.Array) -> jax.Array:
    return values.astype(jnp.float32)


def _scales_q4k(packed: jax.Array) -> tuple[jax.Array, jax.Array]:
    """12 bytes -> eight 6-bit scales and eight 6-bit minimums (Q4_K, Q5_K), as float32.

    Bytes 0-3 hold scales 0-3 and bytes 4-7 minimums 0-3 in their low six bits; scales and
    minimums 4-7 take their low four bits from the nibbles of bytes 8-11 and their top two from
    the spare top bits of bytes 0-3 and 4-7.
    """
    lo_sc, lo_m, mixed = packed[:, 0:4], packed[:, 4:8], packed[:, 8:12]
    sc = jnp.concatenate([lo_sc & 63, (mixed & 0x0F) | ((lo_sc >> 6) << 4)], axis=1)
    m = jnp.concatenate([lo_m & 63, (mixed >> 4) | ((lo_m >> 6) << 4)], axis=1)
    return _float(sc), _float(m)


def _scales_q3k(packed: jax.Array) -> jax.Array:
    """12 bytes -> sixteen scales in -32..31, as float32: low four bits from the nibbles of
    bytes 0-7 (scale ``i`` in byte ``i % 8``), top two from bytes 8-11 (byte ``8 + i % 4``,
    bits ``2 * (i // 4)``), then minus 32."""
    six = _nibbles(packed[:, 0:8], 8) | (_fields(packed[:, 8:12], 2, 4) << 4)
    return _float(six.astype(jnp.int32) - 32)


def _nan_first(product: jax.Array, out: jax.Array) -> jax.Array:
    """``out`` (``product`` plus or minus an offset), but ``product`` where it is NaN.

    numpy rounds the product, then adds, so a NaN product is the one that propagates; an FMA
    gives ``inf * 0 + NaN`` the offset's NaN instead.
    """
    return jnp.where(jnp.isnan(product), product, out)


def _scaled(dl: jax.Array, q: jax.Array, ml: jax.Array | None = None) -> jax.Array:
    """``dl * q - ml`` per sub-block: ``dl``, ``ml`` ``(n, s)``, ``q`` ``(n, 256)``."""
    out = dl[:, :, None] * q.reshape(*dl.shape, -1)
    if ml is not None:
        out = _nan_first(out, out - ml[:, :, None])
    return out.reshape(q.shape)


# ---- legacy formats: 32 values per block ----------------------------------------------------


@_decodes("q4_0")
def _q4_0(blocks: jax.Array) -> jax.Array:
    q = _float(_nibbles(blocks[:, 2:18], 16)) - 8
    return _f16(blocks, 0) * q


@_decodes("q4_1")
def _q4_1(blocks: jax.Array) -> jax.Array:
    q = _float(_nibbles(blocks[:, 4:20], 16))
    product = _f16(blocks, 0) * q
    return _nan_first(product, product + _f16(blocks, 2))


@_decodes("q5_0")
def _q5_0(blocks: jax.Array) -> jax.Array:
    q = _float(_nibbles(blocks[:, 6:22], 16) | (_fields(blocks[:, 2:6], 1, 1) << 4))
    return _f16(blocks, 0) * (q - 16)


@_decodes("q5_1")
def _q5_1(blocks: jax.Array) -> jax.Array:
    q = _float(_nibbles(blocks[:, 8:24], 16) | (_fields(blocks[:, 4:8], 1, 1) << 4))
    product = _f16(blocks, 0) * q
    return _nan_first(product, product + _f16(blocks, 2))


@_decodes("q8_0")
def _q8_0(blocks: jax.Array) -> jax.Array:
    return _int8(blocks[:, 2:34]) * _f16(blocks, 0)


# ---- K-quants: super-blocks of 256 values ---------------------------------------------------


@_decodes("q2_k")
def _q2_k(blocks: jax.Array) -> jax.Array:
    scales = blocks[:, 0:16]
    dl = _f16(blocks, 80) * _float(scales & 0x0F)
    ml = _f16(blocks, 82) * _float(scales >> 4)
    return _scaled(dl, _float(_crumbs(blocks[:, 16:80])), ml)


@_decodes("q3_k")
def _q3_k(blocks: jax.Array) -> jax.Array:
    dl = _f16(blocks, 108) * _scales_q3k(blocks[:, 96:108])
    low = _crumbs(blocks[:, 32:96]).astype(jnp.int32)
    q = low - ((1 - _bits(blocks[:, 0:32]).astype(jnp.int32)) << 2)  # a clear bit means -4
    return _scaled(dl, _float(q))


@_decodes("q4_k")
def _q4_k(blocks: jax.Array) -> jax.Array:
    sc, m = _scales_q4k(blocks[:, 4:16])
    dl, ml = _f16(blocks, 0) * sc, _f16(blocks, 2) * m
    return _scaled(dl, _float(_nibbles(blocks[:, 16:144], 32)), ml)


@_decodes("q5_k")
def _q5_k(blocks: jax.Array) -> jax.Array:
    sc, m = _scales_q4k(blocks[:, 4:16])
    dl, ml = _f16(blocks, 0) * sc, _f16(blocks, 2) * m
    q = _nibbles(blocks[:, 48:176], 32) | (_bits(blocks[:, 16:48]) << 4)
    return _scaled(dl, _float(q), ml)


@_decodes("q6_k")
def _q6_k(blocks: jax.Array) -> jax.Array:
    dl = _f16(blocks, 208) * _int8(blocks[:, 192:208])
    q = _nibbles(blocks[:, 0:128], 64) | (_crumbs(blocks[:, 128:192]) << 4)
    return _scaled(dl, _float(q) - 32)


# ---- table formats: i-quants, FP4 and ternary -----------------------------------------------
#
# The tables are numpy constants that XLA embeds; indexing one is a gather from a constant. Every
# product is of an fp16 (or E8M0/FP8) scale and short dyadic numbers, so exact in float32, and no
# product is followed by an add (sums such as ``grid + delta`` or ``0.5 + s`` come first), so no
# FMA can change a bit. The evaluation order follows the references' anyway.

_NL = IQ4NL_VALUES.astype(np.float32)
_FP4 = FP4_E2M1_X2.astype(np.float32)


def _lookup(table: np.ndarray, index: jax.Array) -> jax.Array:
    """``table[index]`` (rows of ``table`` for each index), a gather from a constant."""
    return jnp.asarray(table)[index.astype(jnp.int32)]


def _u16(field: jax.Array) -> jax.Array:
    """``(n, 2k)`` bytes -> ``(n, k)`` little-endian uint16 words (as uint32)."""
    raw = field.astype(jnp.uint32).reshape(field.shape[0], -1, 2)
    return raw[..., 0] | (raw[..., 1] << 8)


def _u32(field: jax.Array) -> jax.Array:
    """``(..., 4k)`` bytes -> ``(..., k)`` little-endian uint32 words."""
    raw = field.astype(jnp.uint32).reshape(*field.shape[:-1], -1, 4)
    return raw[..., 0] | (raw[..., 1] << 8) | (raw[..., 2] << 16) | (raw[..., 3] << 24)


def _nibble_pairs(field: jax.Array) -> jax.Array:
    """``(n, k)`` bytes -> ``(n, 2k)`` nibbles, each byte's low nibble first."""
    return jnp.stack([field & 0x0F, field >> 4], axis=-1).reshape(field.shape[0], -1)


def _halves(field: jax.Array) -> jax.Array:
    """Runs of 16 bytes (the last axis) -> 32 values: low nibbles 0-15, high nibbles 16-31."""
    return jnp.concatenate([field & 0x0F, field >> 4], axis=-1)


@_decodes("iq4_nl")
def _iq4_nl(blocks: jax.Array) -> jax.Array:
    return _f16(blocks, 0) * _lookup(_NL, _halves(blocks[:, 2:18]))


@_decodes("iq4_xs")
def _iq4_xs(blocks: jax.Array) -> jax.Array:
    n = blocks.shape[0]
    high = (_u16(blocks[:, 2:4]) >> jnp.arange(0, 16, 2, dtype=jnp.uint32)) & 3  # (n, 8)
    six = _nibble_pairs(blocks[:, 4:8]).astype(jnp.int32) | (high.astype(jnp.int32) << 4)
    scale = _f16(blocks, 0) * _float(six - 32)
    values = _lookup(_NL, _halves(blocks[:, 8:136].reshape(n, 8, 16)))  # (n, 8, 32)
    return (scale[:, :, None] * values).reshape(n, QK_K)


with np.errstate(over="ignore"):
    _MXFP4_BITS = (E8M0_HALF[:, None] * _FP4[None, :]).view(np.uint32).reshape(-1)
"""``e * 16 + code`` -> the float32 bits of ``E8M0_HALF[e] * FP4[code]``, 16 KiB.

A table, not a product: XLA:CPU runs with denormals flushed to zero (inputs and results), and
E8M0 bytes 0 and 1 are float32 subnormals (2**-128, 2**-127) whose products the reference keeps.
"""


@_decodes("mxfp4")
def _mxfp4(blocks: jax.Array) -> jax.Array:
    index = blocks[:, 0:1].astype(jnp.int32) * 16 + _halves(blocks[:, 1:17]).astype(jnp.int32)
    return lax.bitcast_convert_type(_lookup(_MXFP4_BITS, index), jnp.float32)


@_decodes("nvfp4")
def _nvfp4(blocks: jax.Array) -> jax.Array:
    n = blocks.shape[0]
    values = _lookup(_FP4, _halves(blocks[:, 4:36].reshape(n, 4, 8)))  # (n, 4, 16)
    return (_lookup(UE4M3_HALF, blocks[:, 0:4])[:, :, None] * values).reshape(n, 64)


@_decodes("tq2_0")
def _tq2_0(blocks: jax.Array) -> jax.Array:
    return _f16(blocks, 64) * (_float(_crumbs(blocks[:, 0:64])) - 1)


_POW3 = np.array([1, 3, 9, 27, 81], np.uint8)


def _trits(packed: jax.Array, count: int) -> jax.Array:
    """``(n, k)`` bytes -> ``(n, count * k)`` trits, trit ``p`` of byte ``j`` at ``p * k + j``:
    ``((byte * 3**p mod 256) * 3) >> 8`` (the uint8 product wraps, as intended)."""
    shifted = packed[:, None, :] * jnp.asarray(_POW3[:count, None])
    return ((shifted.astype(jnp.uint32) * 3) >> 8).reshape(packed.shape[0], -1)


@_decodes("tq1_0")
def _tq1_0(blocks: jax.Array) -> jax.Array:
    t = jnp.concatenate(
        [_trits(blocks[:, 0:32], 5), _trits(blocks[:, 32:48], 5), _trits(blocks[:, 48:52], 4)],
        axis=1,
    )
    return _f16(blocks, 52) * (_float(t) - 1)


def _aux_words(aux: jax.Array) -> tuple[jax.Array, jax.Array]:
    """IQ2_XXS/IQ3_XXS aux words ``(n, 8)`` -> (scale nibble as float32 ``(n, 8)``, signs
    ``(n, 8, 4, 8)``)."""
    sign_index = (aux[:, :, None] >> jnp.array([0, 7, 14, 21], jnp.uint32)) & 0x7F
    return _float(aux >> 28), _lookup(KSIGN_PATTERNS, sign_index)


@_decodes("iq2_xxs")
def _iq2_xxs(blocks: jax.Array) -> jax.Array:
    n = blocks.shape[0]
    payload = blocks[:, 2:66].reshape(n, 8, 8)
    s, signs = _aux_words(_u32(payload[:, :, 4:]).reshape(n, 8))
    grid = _lookup(GRIDS_F32["iq2_xxs"], payload[:, :, :4])  # (n, 8, 4, 8)
    scale = _f16(blocks, 0) * (0.5 + s) * 0.25
    return (scale[:, :, None, None] * grid * signs).reshape(n, QK_K)


@_decodes("iq2_xs")
def _iq2_xs(blocks: jax.Array) -> jax.Array:
    n = blocks.shape[0]
    qs = _u16(blocks[:, 2:66])  # (n, 32)
    grid = _lookup(GRIDS_F32["iq2_xs"], qs & 0x1FF) * _lookup(KSIGN_PATTERNS, qs >> 9)
    scale = _f16(blocks, 0) * (0.5 + _float(_nibble_pairs(blocks[:, 66:74]))) * 0.25
    return (scale[:, :, None] * grid.reshape(n, 16, 16)).reshape(n, QK_K)


@_decodes("iq2_s")
def _iq2_s(blocks: jax.Array) -> jax.Array:
    n = blocks.shape[0]
    index = blocks[:, 2:34].astype(jnp.int32) | (
        _fields(blocks[:, 66:74], 2, 1).astype(jnp.int32) << 8
    )
    grid = _lookup(GRIDS_F32["iq2_s"], index) * _lookup(BYTE_SIGNS, blocks[:, 34:66])  # (n, 32, 8)
    scale = _f16(blocks, 0) * (0.5 + _float(_nibble_pairs(blocks[:, 74:82]))) * 0.25
    return (scale[:, :, None] * grid.reshape(n, 16, 16)).reshape(n, QK_K)


@_decodes("iq3_xxs")
def _iq3_xxs(blocks: jax.Array) -> jax.Array:
    n = blocks.shape[0]
    s, signs = _aux_words(_u32(blocks[:, 66:98]))
    grid = _lookup(GRIDS_F32["iq3_xxs"], blocks[:, 2:66]).reshape(n, 8, 4, 8)
    scale = _f16(blocks, 0) * (0.5 + s) * 0.5
    return (scale[:, :, None, None] * grid * signs).reshape(n, QK_K)


@_decodes("iq3_s")
def _iq3_s(blocks: jax.Array) -> jax.Array:
    n = blocks.shape[0]
    index = blocks[:, 2:66].astype(jnp.int32) | (
        _fields(blocks[:, 66:74], 1, 1).astype(jnp.int32) << 8
    )
    values = _lookup(GRIDS_F32["iq3_s"], index).reshape(n, 32, 8) * _lookup(
        BYTE_SIGNS, blocks[:, 74:106]
    )
    scale = _f16(blocks, 0) * _float(2 * _nibble_pairs(blocks[:, 106:110]).astype(jnp.int32) + 1)
    return (scale[:, :, None] * values.reshape(n, 8, 32)).reshape(n, QK_K)


def _deltas(bit: jax.Array) -> jax.Array:
    return jnp.where(bit != 0, jnp.float32(-0.125), jnp.float32(0.125))


@_decodes("iq1_s")
def _iq1_s(blocks: jax.Array) -> jax.Array:
    n = blocks.shape[0]
    qh = _u16(blocks[:, 34:50])  # (n, 8), one per sub-block
    high = (qh[:, :, None] >> jnp.array([0, 3, 6, 9], jnp.uint32)) & 7
    index = blocks[:, 2:34].reshape(n, 8, 4).astype(jnp.uint32) | (high << 8)
    values = _lookup(GRIDS_F32["iq1_s"], index) + _deltas(qh & 0x8000)[:, :, None, None]
    scale = _f16(blocks, 0) * _float(2 * ((qh >> 12) & 7) + 1)
    return (scale[:, :, None, None] * values).reshape(n, QK_K)


@_decodes("iq1_m")
def _iq1_m(blocks: jax.Array) -> jax.Array:
    n = blocks.shape[0]
    words = _u16(blocks[:, 48:56])  # (n, 4)
    top = (words >> 12) << jnp.array([0, 4, 8, 12], jnp.uint32)
    d_bits = (top[:, 0:1] | top[:, 1:2] | top[:, 2:3] | top[:, 3:4]).astype(jnp.uint16)
    d = lax.bitcast_convert_type(d_bits, jnp.float16).astype(jnp.float32)  # (n, 1)
    s = ((words[:, :, None] >> jnp.array([0, 3, 6, 9], jnp.uint32)) & 7).reshape(n, 16)
    nib = _nibble_pairs(blocks[:, 32:48]).astype(jnp.uint32)  # (n, 32), one per group of 8
    index = blocks[:, 0:32].astype(jnp.uint32) | ((nib & 7) << 8)
    values = _lookup(GRIDS_F32["iq1_s"], index) + _deltas(nib & 8)[:, :, None]  # (n, 32, 8)
    scale = d * _float(2 * s + 1)  # (n, 16), one per 16 values
    return (scale[:, :, None] * values.reshape(n, 16, 16)).reshape(n, QK_K)


# ---- rowwise formats: a row's values, then its scale and bias -------------------------------


def _f32(rows: jax.Array, at: int) -> jax.Array:
    """The little-endian float32 at byte ``at`` of each row, as ``(n, 1)``."""
    raw = rows[:, at : at + 4].astype(jnp.uint32)
    bits = raw[:, 0:1] | (raw[:, 1:2] << 8) | (raw[:, 2:3] << 16) | (raw[:, 3:4] << 24)
    return lax.bitcast_convert_type(bits, jnp.float32)


def _two_sum(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(s, e)``: ``s = a + b`` rounded and ``e`` its error, ``s + e == a + b`` exactly
    (Knuth; adds only, so nothing for XLA to contract)."""
    s = a + b
    virtual = s - a
    return s, (a - (s - virtual)) + (b - virtual)


def _round_to_odd(s: jax.Array, e: jax.Array) -> jax.Array:
    """``s + e`` (``s`` rounded, ``e`` exact error) rounded to odd: toward zero, then the last
    bit set where inexact."""
    bits = lax.bitcast_convert_type(s, jnp.int32)
    below = ((e > 0) != (s > 0)).astype(jnp.int32)  # the exact sum is nearer zero than s
    odd = jnp.where(e != 0, (bits - below) | 1, bits)
    return lax.bitcast_convert_type(odd, jnp.float32)


def _sum3(a: jax.Array, b: jax.Array, c: jax.Array) -> jax.Array:
    """``a + b + c`` rounded once (Boldo and Melquiond's algorithm through rounding to odd)."""
    uh, ul = _two_sum(b, c)
    th, tl = _two_sum(a, uh)
    low, low_error = _two_sum(tl, ul)
    return th + _round_to_odd(low, low_error)


def _split16(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``x`` as ``high + low``: its top 16 significant bits and the 8 below, both exact."""
    bits = lax.bitcast_convert_type(x, jnp.uint32)
    high = lax.bitcast_convert_type(bits & jnp.uint32(0xFFFFFF00), jnp.float32)
    return high, x - high


@_decodes("rowwise_int8")
def _rowwise_int8(rows: jax.Array) -> jax.Array:
    d = rows.shape[1] - 8
    scale, bias = _f32(rows, d), _f32(rows, d + 4)
    q = _float(rows[:, :d])
    high, low = _split16(scale)
    fused = _sum3(q * high, q * low, bias)
    finite = jnp.isfinite(scale) & jnp.isfinite(bias) & jnp.isfinite(fused)
    return jnp.where(finite, fused, q * scale + bias)


def _rowwise_nbit(rows: jax.Array, bits: int) -> jax.Array:
    packed = rows.shape[1] - 4
    q = _float(_fields(rows[:, :packed], bits, 1))
    return q * _f16(rows, packed) + _f16(rows, packed + 2)  # the product is exact


@_decodes("rowwise_int4")
def _rowwise_int4(rows: jax.Array) -> jax.Array:
    return _rowwise_nbit(rows, 4)


@_decodes("rowwise_int2")
def _rowwise_int2(rows: jax.Array) -> jax.Array:
    return _rowwise_nbit(rows, 2)


# ---- lookup ---------------------------------------------------------------------------------


def decode(name: str, rows: jax.Array) -> jax.Array:
    """uint8 rows (..., k * block_bytes) -> float32 (..., k * block_elements); jit-traceable,
    static shapes.

    Raises:
        ValueError: unknown format, or the last axis is not a whole number of blocks.
        TypeError: ``rows`` is not uint8.
        NotImplementedError: a registry format with no decoder here, not declared in
            :data:`HOST_DECODED`.
    """
    fmt = FORMATS.get(name)
    if fmt is None:
        raise ValueError(f"unknown quantization format {name!r}; known: {', '.join(FORMATS)}")
    name = fmt.name
    decoder = DECODERS.get(name)
    if decoder is not None:
        return decoder(rows)
    if name not in HOST_DECODED:
        raise NotImplementedError(
            f"{name} has no XLA decoder: write one in {__name__} (@_decodes({name!r})), or "
            "add it to HOST_DECODED to decode it on the host"
        )
    return host_decode(fmt, rows)


def host_decode(fmt: QuantFormat, rows: jax.Array) -> jax.Array:
    """``fmt``'s reference decoder (bit-exact) on the host through `jax.pure_callback`, on the
    rows looked up only; XLA cannot fuse it. For the formats of :data:`HOST_DECODED`."""
    if rows.dtype != jnp.uint8:
        raise TypeError(f"{fmt.name} rows are uint8 blocks, got {rows.dtype}")
    width = row_values(fmt, rows.shape[-1])
    result = jax.ShapeDtypeStruct((*rows.shape[:-1], width), jnp.float32)
    return jax.pure_callback(lambda r: fmt.dequantize(np.asarray(r)), result, rows)
