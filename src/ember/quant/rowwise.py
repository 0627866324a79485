"""Rowwise-quantized rows as PyTorch and FBGEMM store them: a row's values, then its scale and
bias. GGUF has no type for them; recommendation models keep their tables this way.

Layouts of a row of ``d`` values (bytes, little-endian), as torch's prepack ops write them:

============  ==========  ===============================================  =====================
format        bytes       layout                                           value j
============  ==========  ===============================================  =====================
ROWWISE_INT8  d + 8       q[d] uint8, scale:f32, bias:f32                  fma(q_j, scale, bias)
ROWWISE_INT4  d / 2 + 4   q[d/2]: value 2i low nibble of byte i, then      q_j * scale + bias
                          2i + 1 its high nibble; scale:f16, bias:f16
ROWWISE_INT2  d / 4 + 4   q[d/4]: value 4i + k bits 2k, 2k+1 of byte i;    q_j * scale + bias
                          scale:f16, bias:f16
============  ==========  ===============================================  =====================

``d`` is even for INT4 and a multiple of 4 for INT2, as torch's prepack ops require. The value
is rounded once, as torch's unpack and bag ops (FBGEMM's, fused multiply-add) compute it: an
INT8 product of 8 and 24 significant bits is not exact in float32, so rounding it first would
differ; the fp16 scales' products are exact (4 and 11 bits), so INT4 and INT2 have no second
rounding to avoid. NaN payloads are not specified (FMA units pick among NaN operands freely).

The quantizers are FBGEMM's (torch's ``embedding_bag_byte_prepack``, ``_4bit_prepack`` and
``_2bit_prepack``, without optimized qparams) operation for operation in float32, so their bytes
equal torch's: the row's minimum is the bias (rounded to fp16 for INT4/INT2), its range over the
top level the scale, and each value ``rint((x - bias) * inverse)`` clamped to the levels, where a
level that is NaN or past int32 becomes 0, as x86's conversion gives. A row holding NaN is the
exception: torch's minimum and maximum skip a NaN or not depending on where it falls in their
8-wide vectors, so its bytes for such a row follow no rule; here the NaN reaches the scale and
bias, and the whole row decodes to NaN. So does the sign of a zero minimum in a row holding
both +0 and -0 (its vector code keeps either): the bias may be the other zero than torch's,
and the row decodes the same.

>>> import numpy as np
>>> x = np.array([[0, 1, 2, 255], [-1, 0, 0, 1]], np.float32)
>>> packed = ROWWISE_INT8.quantize(x)
>>> packed.shape, packed[0, :4].tolist(), ROWWISE_INT8.dequantize(packed)[0].tolist()
((2, 12), [0, 1, 2, 255], [0.0, 1.0, 2.0, 255.0])
>>> ROWWISE_INT4.quantize(x).shape, ROWWISE_INT2.quantize(x).shape
((2, 6), (2, 5))

FBGEMM's table-batched modules (TBE, `IntNBitTableBatchedEmbeddingBagsCodegen`) keep a row's
float16 scale and bias apart from its values (`split_embedding_weights()` gives the two);
`from_fbgemm_tbe` makes them these rows, which decode to the values FBGEMM's kernels give.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .format import _CHUNK_ELEMENTS, _FLOAT_INPUTS, QuantFormat, read_f16, row_values

__all__ = ["ROWWISE_INT2", "ROWWISE_INT4", "ROWWISE_INT8", "from_fbgemm_tbe", "rowwise_format"]

_INT8_EPSILON = np.float32(1e-8)
"""FBGEMM's guard against a zero range in the INT8 inverse scale."""


def _fused_multiply_add(q: np.ndarray, scale: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``q * scale + bias`` in float32, rounded once as an FMA rounds it, for float32 ``scale``
    and ``bias`` and levels ``q`` of up to 29 bits.

    The product is exact in float64; the sum is rounded to odd there (the error of the
    rounded sum, found exactly by Knuth's two-sum, forces its last bit), and rounding that to
    float32 is then correct, as float64 keeps more than two bits beyond float32's.
    """
    product = q.astype(np.float64) * scale.astype(np.float64)
    addend = np.broadcast_to(bias.astype(np.float64), product.shape)
    total = product + addend
    virtual = total - product
    error = (product - (total - virtual)) + (addend - virtual)
    inexact = (error != 0) & np.isfinite(total)
    bits = total.view(np.int64)
    below = inexact & ((error > 0) != (total > 0))  # the exact sum is nearer zero than total
    bits = np.where(inexact, (bits - below) | 1, bits)
    return bits.view(np.float64).astype(np.float32)


def _levels(scaled: np.ndarray, top: int) -> np.ndarray:
    """``rint(scaled)`` clamped to ``0..top`` as uint8; NaN or past int32 is 0, as x86's
    float-to-int32 conversion (``lrintf``, ``cvtps2dq``) makes them before the clamp."""
    level = np.rint(scaled)
    invalid = ~(np.abs(level) < np.float32(2**31))
    return np.where(invalid, 0, np.clip(level, 0, top)).astype(np.uint8)


def _decode_int8(rows: np.ndarray) -> np.ndarray:
    d = rows.shape[1] - 8
    tail = np.ascontiguousarray(rows[:, d:]).view("<f4").astype(np.float32)
    return _fused_multiply_add(rows[:, :d], tail[:, 0:1], tail[:, 1:2])


def _extremes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's minimum and maximum as FBGEMM finds them: from float32's largest finite
    values inward, so a row of +inf only has the minimum 3.4e38, one of -inf the maximum
    -3.4e38."""
    low = np.minimum(x.min(axis=1, keepdims=True), _LARGEST)
    return low, np.maximum(x.max(axis=1, keepdims=True), -_LARGEST)


_LARGEST = np.finfo(np.float32).max


def _encode_int8(x: np.ndarray) -> np.ndarray:
    low, high = _extremes(x)
    span = high - low
    scale = span / np.float32(255)
    inverse = np.float32(255) / (span + _INT8_EPSILON)
    tail = np.concatenate([scale, low], axis=1).astype("<f4").view(np.uint8)
    return np.concatenate([_levels((x - low) * inverse, 255), tail], axis=1)


def _nbit_decoder(bits: int) -> Callable[[np.ndarray], np.ndarray]:
    shifts = np.arange(0, 8, bits, dtype=np.uint8)
    top = (1 << bits) - 1

    def decode(rows: np.ndarray) -> np.ndarray:
        packed = rows.shape[1] - 4
        levels = (rows[:, :packed, None] >> shifts) & top
        q = levels.reshape(len(rows), -1).astype(np.float32)
        return q * read_f16(rows, packed) + read_f16(rows, packed + 2)

    return decode


def _nbit_encoder(bits: int) -> Callable[[np.ndarray], np.ndarray]:
    per_byte, top = 8 // bits, (1 << bits) - 1
    shifts = np.arange(0, 8, bits, dtype=np.uint8)

    def encode(x: np.ndarray) -> np.ndarray:
        low, high = _extremes(x)
        low = low.astype(np.float16).astype(np.float32)
        span = high - low
        scale = np.where(span == 0, np.float32(1), span / np.float32(top))
        scale = scale.astype(np.float16).astype(np.float32)
        scale[scale == 0] = 1  # an fp16 underflow: any scale gives the levels 0
        levels = _levels((x - low) * (np.float32(1) / scale), top)
        packed = levels.reshape(len(x), -1, per_byte) << shifts
        data = np.bitwise_or.reduce(packed, axis=2, dtype=np.uint8)
        tail = np.concatenate([scale, low], axis=1).astype("<f2").view(np.uint8)
        return np.concatenate([data, tail], axis=1)

    return encode


def rowwise_format(
    name: str,
    values_per_byte: int,
    tail_bytes: int,
    decode: Callable[[np.ndarray], np.ndarray],
    encode: Callable[[np.ndarray], np.ndarray],
) -> QuantFormat:
    """A :class:`QuantFormat` of rows of packed values then ``tail_bytes`` of scale and bias:
    its conversions check one whole row on the last axis, then call ``decode``/``encode`` on
    2-D chunks of rows."""

    def dequantize(rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        if rows.dtype != np.uint8:
            raise TypeError(f"{name} dequantize takes uint8 rows, got {rows.dtype}")
        if rows.ndim == 0:
            raise ValueError(f"{name} needs at least one axis of bytes, got a scalar")
        width = row_values(fmt, rows.shape[-1])
        flat = rows.reshape(-1, rows.shape[-1])
        out = np.empty((len(flat), width), np.float32)
        step = max(1, _CHUNK_ELEMENTS // width)
        with np.errstate(invalid="ignore", over="ignore"):  # inf/NaN scales decode to inf/NaN
            for start in range(0, len(flat), step):
                out[start : start + step] = decode(flat[start : start + step])
        return out.reshape(*rows.shape[:-1], width)

    def quantize(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values)
        if values.dtype not in _FLOAT_INPUTS:
            raise TypeError(f"{name} quantize takes float values, got {values.dtype}")
        if values.ndim == 0:
            raise ValueError(f"{name} needs at least one axis of values, got a scalar")
        width = values.shape[-1]
        if width < 1 or width % values_per_byte:
            raise ValueError(
                f"{name} packs {values_per_byte} values a byte: a row of {width} values is not "
                f"a positive multiple of {values_per_byte}"
            )
        flat = values.reshape(-1, width)
        out = np.empty((len(flat), width // values_per_byte + tail_bytes), np.uint8)
        step = max(1, _CHUNK_ELEMENTS // width)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            for start in range(0, len(flat), step):
                out[start : start + step] = encode(flat[start : start + step].astype(np.float32))
        return out.reshape(*values.shape[:-1], out.shape[1])

    dequantize.__doc__ = f"uint8 {name} rows (..., row_bytes) -> float32 (..., values)."
    quantize.__doc__ = f"float (..., values) -> uint8 {name} rows (..., row_bytes), as torch packs."
    dequantize.__name__ = f"dequantize_{name}"
    quantize.__name__ = f"quantize_{name}"
    fmt = QuantFormat(
        name, None, values_per_byte, 1, dequantize, quantize, row_tail_bytes=tail_bytes
    )
    return fmt


ROWWISE_INT8 = rowwise_format("rowwise_int8", 1, 8, _decode_int8, _encode_int8)
ROWWISE_INT4 = rowwise_format("rowwise_int4", 2, 4, _nbit_decoder(4), _nbit_encoder(4))
ROWWISE_INT2 = rowwise_format("rowwise_int2", 4, 4, _nbit_decoder(2), _nbit_encoder(2))


def from_fbgemm_tbe(values: object, scale_bias: object, name: object) -> np.ndarray:
    """The rows of format `name` ("rowwise_int8", "rowwise_int4" or "rowwise_int2", or its
    `QuantizationEncoding` or format) holding a
    table kept as FBGEMM's table-batched modules keep it: `values` `(rows, packed bytes)` and
    `scale_bias` `(rows, 4)`, each row's float16 scale then bias, as
    `IntNBitTableBatchedEmbeddingBagsCodegen.split_embedding_weights()` gives them (numpy
    arrays or CPU tensors). INT4 and INT2 rows take the same bytes, scale and bias moved to
    the end; INT8 rows widen them to float32, exactly: every value decodes as FBGEMM's does.

    >>> packed = np.array([[0, 7, 255]], np.uint8)
    >>> scale_bias = np.array([[0.5, -1.0]], np.float16).view(np.uint8)
    >>> ROWWISE_INT8.dequantize(from_fbgemm_tbe(packed, scale_bias, "rowwise_int8")).tolist()
    [[-1.0, 2.5, 126.5]]

    Raises:
        ValueError: an unknown format, arrays of other shapes or dtypes than those above, or
            of different row counts.
    """
    from . import FORMATS  # the registry holds this module's formats

    fmt = FORMATS.get(name)
    rowwise = (ROWWISE_INT8, ROWWISE_INT4, ROWWISE_INT2)
    if fmt not in rowwise:
        names = ", ".join(f.name for f in rowwise)
        raise ValueError(f"from_fbgemm_tbe: a format of {names}, got {name!r}")
    values, scale_bias = np.asarray(values), np.asarray(scale_bias)
    if values.dtype != np.uint8 or values.ndim != 2 or values.shape[1] == 0:
        raise ValueError(
            f"from_fbgemm_tbe: values are uint8 rows (rows, packed bytes), got {values.dtype} "
            f"of shape {values.shape}"
        )
    if scale_bias.dtype != np.uint8 or scale_bias.shape != (len(values), 4):
        raise ValueError(
            f"from_fbgemm_tbe: scale_bias is uint8 of shape ({len(values)}, 4) (a float16 scale "
            f"and bias per row), got {scale_bias.dtype} of shape {scale_bias.shape}"
        )
    if fmt is ROWWISE_INT8:
        halves = np.ascontiguousarray(scale_bias).view("<f2").astype("<f4")
        tail = halves.view(np.uint8)
    else:
        tail = scale_bias
    return np.concatenate([values, tail], axis=1)
