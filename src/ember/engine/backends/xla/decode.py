"""GGUF block decoders in jax.numpy, for the XLA backend.

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

from ember.quant import FORMATS, QuantFormat

__all__ = ["DECODERS", "decode"]

QK_K = 256


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


def _q4_0(blocks: jax.Array) -> jax.Array:
    q = _float(_nibbles(blocks[:, 2:18], 16)) - 8
    return _f16(blocks, 0) * q


def _q4_1(blocks: jax.Array) -> jax.Array:
    q = _float(_nibbles(blocks[:, 4:20], 16))
    product = _f16(blocks, 0) * q
    return _nan_first(product, product + _f16(blocks, 2))


def _q5_0(blocks: jax.Array) -> jax.Array:
    q = _float(_nibbles(blocks[:, 6:22], 16) | (_fields(blocks[:, 2:6], 1, 1) << 4))
    return _f16(blocks, 0) * (q - 16)


def _q5_1(blocks: jax.Array) -> jax.Array:
    q = _float(_nibbles(blocks[:, 8:24], 16) | (_fields(blocks[:, 4:8], 1, 1) << 4))
    product = _f16(blocks, 0) * q
    return _nan_first(product, product + _f16(blocks, 2))


def _q8_0(blocks: jax.Array) -> jax.Array:
    return _int8(blocks[:, 2:34]) * _f16(blocks, 0)


# ---- K-quants: super-blocks of 256 values ---------------------------------------------------


def _q2_k(blocks: jax.Array) -> jax.Array:
    scales = blocks[:, 0:16]
    dl = _f16(blocks, 80) * _float(scales & 0x0F)
    ml = _f16(blocks, 82) * _float(scales >> 4)
    return _scaled(dl, _float(_crumbs(blocks[:, 16:80])), ml)


def _q3_k(blocks: jax.Array) -> jax.Array:
    dl = _f16(blocks, 108) * _scales_q3k(blocks[:, 96:108])
    low = _crumbs(blocks[:, 32:96]).astype(jnp.int32)
    q = low - ((1 - _bits(blocks[:, 0:32]).astype(jnp.int32)) << 2)  # a clear bit means -4
    return _scaled(dl, _float(q))


def _q4_k(blocks: jax.Array) -> jax.Array:
    sc, m = _scales_q4k(blocks[:, 4:16])
    dl, ml = _f16(blocks, 0) * sc, _f16(blocks, 2) * m
    return _scaled(dl, _float(_nibbles(blocks[:, 16:144], 32)), ml)


def _q5_k(blocks: jax.Array) -> jax.Array:
    sc, m = _scales_q4k(blocks[:, 4:16])
    dl, ml = _f16(blocks, 0) * sc, _f16(blocks, 2) * m
    q = _nibbles(blocks[:, 48:176], 32) | (_bits(blocks[:, 16:48]) << 4)
    return _scaled(dl, _float(q), ml)


def _q6_k(blocks: jax.Array) -> jax.Array:
    dl = _f16(blocks, 208) * _int8(blocks[:, 192:208])
    q = _nibbles(blocks[:, 0:128], 64) | (_crumbs(blocks[:, 128:192]) << 4)
    return _scaled(dl, _float(q) - 32)


# ---- registry -------------------------------------------------------------------------------


def _on_rows(
    name: str, block_bytes: int, block_elements: int, blocks_fn: Callable[[jax.Array], jax.Array]
) -> Callable[[jax.Array], jax.Array]:
    """``blocks_fn`` on ``(n, block_bytes)`` lifted to rows ``(..., k * block_bytes)``."""

    def decoder(rows: jax.Array) -> jax.Array:
        rows = jnp.asarray(rows)
        if rows.dtype != jnp.uint8:
            raise TypeError(f"{name} decode takes uint8 rows, got {rows.dtype}")
        if rows.ndim == 0 or rows.shape[-1] % block_bytes:
            raise ValueError(
                f"{name}: rows of shape {rows.shape} are not whole {block_bytes}-byte blocks"
            )
        width = rows.shape[-1] // block_bytes * block_elements
        values = blocks_fn(rows.reshape(-1, block_bytes))
        return values.reshape(*rows.shape[:-1], width)

    decoder.__name__ = decoder.__qualname__ = f"decode_{name}"
    decoder.__doc__ = (
        f"uint8 {name} rows (..., k*{block_bytes}) -> float32 (..., k*{block_elements})."
    )
    return decoder


DECODERS: dict[str, Callable[[jax.Array], jax.Array]] = {
    name: _on_rows(name, block_bytes, block_elements, fn)
    for name, block_bytes, block_elements, fn in [
        ("q4_0", 18, 32, _q4_0),
        ("q4_1", 20, 32, _q4_1),
        ("q5_0", 22, 32, _q5_0),
        ("q5_1", 24, 32, _q5_1),
        ("q8_0", 34, 32, _q8_0),
        ("q2_k", 84, QK_K, _q2_k),
        ("q3_k", 110, QK_K, _q3_k),
        ("q4_k", 144, QK_K, _q4_k),
        ("q5_k", 176, QK_K, _q5_k),
        ("q6_k", 210, QK_K, _q6_k),
    ]
}
"""Format name (lowercase, as ember.quant.FORMATS keys it) -> decoder."""


def decode(name: str, rows: jax.Array) -> jax.Array:
    """uint8 rows (..., k * block_bytes) -> float32 (..., k * block_elements); jit-traceable,
    static shapes.

    Raises:
        ValueError: unknown format, or the last axis is not a whole number of blocks.
        TypeError: ``rows`` is not uint8.
    """
    decoder = DECODERS.get(name)
    if decoder is not None:
        return decoder(rows)
    fmt = FORMATS.get(name)
    if fmt is None:
        raise ValueError(f"unknown quantization format {name!r}; known: {', '.join(FORMATS)}")
    return host_decode(fmt, rows)


def host_decode(fmt: QuantFormat, rows: jax.Array) -> jax.Array:
    """A format with no `jnp` decoder yet: `ember.quant`'s reference decoder (bit-exact) runs
    on the host through `jax.pure_callback`, on the rows looked up only; XLA cannot fuse it."""
    if rows.dtype != jnp.uint8:
        raise TypeError(f"{fmt.name} rows are uint8 blocks, got {rows.dtype}")
    width = rows.shape[-1] // fmt.block_bytes * fmt.block_elements
    result = jax.ShapeDtypeStruct((*rows.shape[:-1], width), jnp.float32)
    return jax.pure_callback(lambda r: fmt.dequantize(np.asarray(r)), result, rows)
