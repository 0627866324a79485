"""GGUF's K-quants: super-blocks of 256 values in sub-blocks of 16 or 32, whose scales are
themselves quantized against one or two fp16 super-scales.

Layouts (bytes, little-endian), as ggml's ``block_q*_K`` structs store them:

======  =====  ===================================================================
format  bytes  layout
======  =====  ===================================================================
Q2_K    84     scales[16] (sc | m<<4), qs[64] (2-bit), d:f16, dmin:f16
Q3_K    110    hmask[32], qs[64] (2-bit), scales[12] (6-bit, biased by 32), d:f16
Q4_K    144    d:f16, dmin:f16, scales[12] (six 6-bit sc and m), qs[128] (4-bit)
Q5_K    176    d:f16, dmin:f16, scales[12], qh[32], qs[128]
Q6_K    210    ql[128], qh[64], scales[16] int8, d:f16
======  =====  ===================================================================

Value ``e`` of a super-block is ``(d * sc) * q - (dmin * m)`` for the formats with a minimum
(Q2_K, Q4_K, Q5_K) and ``(d * sc) * q`` otherwise, with ``sc``/``m`` those of its sub-block.
Both products are rounded to float32 before use, which is what makes the result bit-exact
against ``gguf.quants.dequantize``. Where the bits of ``q`` sit:

* 2-bit fields (Q2_K, Q3_K low bits, Q6_K high bits): ``e = 128h + 32s + j`` reads bits
  ``2s, 2s+1`` of byte ``32h + j`` of its field.
* 4-bit fields (Q4_K, Q5_K): ``e = 64c + 32n + j`` reads nibble ``n`` of ``qs[32c + j]``;
  Q6_K's low bits: ``e = 128h + 64n + k`` reads nibble ``n`` of ``ql[64h + k]``.
* 1-bit fields (Q3_K ``hmask``, Q5_K ``qh``): ``e = 32b + j`` reads bit ``b`` of byte ``j``.

gguf ships no K-quant quantizer; ours fits each sub-block by a small grid search over its scale
(least squares for the scale, and the minimum where there is one, at each candidate), then
quantizes the sub-block scales against the super-scale and re-rounds every value with the final,
stored scales. Q2_K, whose four levels leave the most error, polishes each candidate with a
Lloyd step and then refits its two super-scales part of the way toward keeping the row's norm
(:func:`_unshrink_super_scales`), so that dot products are not biased toward zero; a
super-block keeps the plain fit where that stores over 2 % less squared error. Summed over
rows the error is lower; a row may store up to 2 % more.

>>> import numpy as np
>>> x = np.random.default_rng(0).standard_normal(256).astype(np.float32)
>>> bool(np.sqrt(np.mean((Q6_K.dequantize(Q6_K.quantize(x)) - x) ** 2)) < 0.05)
True
"""

from __future__ import annotations

import numpy as np

from .format import block_format, read_f16, write_f16

__all__ = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]

QK_K = 256
_F16_MAX = np.float32(65504)
_F16_TINY = np.float32(2.0**-24)  # the smallest fp16 subnormal


# ---- unpacking ------------------------------------------------------------------------------


def _crumbs(field: np.ndarray) -> np.ndarray:
    """2-bit values: ``(n, 32*h)`` bytes -> ``(n, 128*h)`` values, in the order above."""
    n = field.shape[0]
    shifts = np.array([0, 2, 4, 6], np.uint8)[None, None, :, None]
    return ((field.reshape(n, -1, 1, 32) >> shifts) & 3).reshape(n, -1)


def _bits(field: np.ndarray) -> np.ndarray:
    """1-bit values: 32 bytes -> 256 values, value ``32b + j`` being bit ``b`` of byte ``j``."""
    n = field.shape[0]
    shifts = np.arange(8, dtype=np.uint8)[None, :, None]
    return ((field.reshape(n, 1, 32) >> shifts) & 1).reshape(n, QK_K)


def _nibbles(field: np.ndarray, run: int) -> np.ndarray:
    """4-bit values: runs of ``run`` bytes give ``run`` low nibbles, then ``run`` high ones."""
    n = field.shape[0]
    shifts = np.array([0, 4], np.uint8)[None, None, :, None]
    return ((field.reshape(n, -1, 1, run) >> shifts) & 0x0F).reshape(n, -1)


def _unpack_scales_q4k(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """12 bytes -> eight 6-bit scales and eight 6-bit minimums (Q4_K and Q5_K).

    Bytes 0-3 hold scales 0-3, bytes 4-7 minimums 0-3 (low six bits each); scales and
    minimums 4-7 take their low four bits from the nibbles of bytes 8-11 and their top two
    from the spare top bits of bytes 0-3 and 4-7.
    """
    lo_sc, lo_m, mixed = packed[:, 0:4], packed[:, 4:8], packed[:, 8:12]
    sc = np.concatenate([lo_sc & 63, (mixed & 0x0F) | ((lo_sc >> 6) << 4)], axis=1)
    m = np.concatenate([lo_m & 63, (mixed >> 4) | ((lo_m >> 6) << 4)], axis=1)
    return sc, m


def _unpack_scales_q3k(packed: np.ndarray) -> np.ndarray:
    """12 bytes -> sixteen signed scales: low four bits from the nibbles of bytes 0-7 (scale i
    in byte i % 8, nibble i // 8), top two bits from bytes 8-11 (byte 8 + i % 4, bits
    2 * (i // 4)), then minus 32."""
    n = packed.shape[0]
    low = (packed[:, None, 0:8] >> np.array([0, 4], np.uint8)[None, :, None]) & 0x0F
    high = (packed[:, None, 8:12] >> np.array([0, 2, 4, 6], np.uint8)[None, :, None]) & 3
    six = low.reshape(n, 16) | (high.reshape(n, 16) << 4)
    return six.astype(np.int16) - 32


def _per_value(sub: np.ndarray) -> np.ndarray:
    """Sub-block quantities ``(n, s)`` repeated for each of their ``256 / s`` values."""
    return np.repeat(sub, QK_K // sub.shape[1], axis=1)


def _decode_q2_k(blocks: np.ndarray) -> np.ndarray:
    scales = blocks[:, 0:16]
    d, dmin = read_f16(blocks, 80), read_f16(blocks, 82)
    dl = d * (scales & 0x0F).astype(np.float32)
    ml = dmin * (scales >> 4).astype(np.float32)
    q = _crumbs(blocks[:, 16:80]).astype(np.float32)
    return _per_value(dl) * q - _per_value(ml)


def _decode_q3_k(blocks: np.ndarray) -> np.ndarray:
    d = read_f16(blocks, 108)
    dl = d * _unpack_scales_q3k(blocks[:, 96:108]).astype(np.float32)
    low = _crumbs(blocks[:, 32:96]).astype(np.int8)
    q = low - ((1 - _bits(blocks[:, 0:32])) << 2).astype(np.int8)  # a clear bit means -4
    return _per_value(dl) * q.astype(np.float32)


def _decode_q4_k(blocks: np.ndarray) -> np.ndarray:
    d, dmin = read_f16(blocks, 0), read_f16(blocks, 2)
    sc, m = _unpack_scales_q4k(blocks[:, 4:16])
    dl, ml = d * sc.astype(np.float32), dmin * m.astype(np.float32)
    q = _nibbles(blocks[:, 16:144], 32).astype(np.float32)
    return _per_value(dl) * q - _per_value(ml)


def _decode_q5_k(blocks: np.ndarray) -> np.ndarray:
    d, dmin = read_f16(blocks, 0), read_f16(blocks, 2)
    sc, m = _unpack_scales_q4k(blocks[:, 4:16])
    dl, ml = d * sc.astype(np.float32), dmin * m.astype(np.float32)
    q = (_nibbles(blocks[:, 48:176], 32) | (_bits(blocks[:, 16:48]) << 4)).astype(np.float32)
    return _per_value(dl) * q - _per_value(ml)


def _decode_q6_k(blocks: np.ndarray) -> np.ndarray:
    d = read_f16(blocks, 208)
    dl = d * blocks[:, 192:208].view(np.int8).astype(np.float32)
    q = _nibbles(blocks[:, 0:128], 64) | (_crumbs(blocks[:, 128:192]) << 4)
    return _per_value(dl) * (q.astype(np.float32) - np.float32(32))


# ---- fitting --------------------------------------------------------------------------------


def _fit_affine(
    x: np.ndarray, top: int, steps: int = 15, polish: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Per sub-block of ``x`` ``(n, s, L)``: scale ``a >= 0`` and offset ``b`` with
    ``x ~ a * q + b``, ``q`` in ``0..top``, searched over a few grids near ``top/(max-min)``.

    Each candidate grid rounds the values, then least squares gives the best ``a, b`` for those
    levels. The stored minimum is unsigned and its super-scale shared, so within a super-block
    every ``b`` has one sign: ``b <= 0`` as ggml does, except in super-blocks whose values are
    all positive, which get ``b >= 0`` (a negative ``dmin``) instead of wasting levels on
    ``[0, min)``. With ``polish``, every candidate also takes one Lloyd step (values re-rounded
    with its own ``a, b``, least squares again: the grids all pin level 0 to the minimum, the
    step frees it), and the winner one more; a step is kept only where it lowers the error.
    Returns ``(a, -b)``.
    """
    positive = (x.min(axis=(1, 2)) > 0)[:, None]  # per super-block
    lo = np.where(positive, x.min(axis=2), np.minimum(x.min(axis=2), 0))
    hi = x.max(axis=2)
    span = hi - lo
    inv_span = np.where(span > 0, 1 / np.where(span > 0, span, 1), 0).astype(np.float32)
    shifted = x - lo[..., None]
    count = x.shape[2]
    sx = x.sum(axis=2).astype(np.float64)
    sxx = np.einsum("nsl,nsl->ns", x, x).astype(np.float64)

    def solve(q: np.ndarray):
        """Least-squares ``a, b`` for levels ``q``, with the sign rule above, and the error."""
        sq = q.sum(axis=2).astype(np.float64)
        sqq = np.einsum("nsl,nsl->ns", q, q).astype(np.float64)
        sqx = np.einsum("nsl,nsl->ns", q, x).astype(np.float64)
        det = count * sqq - sq * sq
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(det > 0, (count * sqx - sq * sx) / det, 0)
            b = np.where(det > 0, (sqq * sx - sq * sqx) / det, sx / count)
            wrong_sign = np.where(positive, b < 0, b > 0)
            a = np.where(wrong_sign, np.where(sqq > 0, sqx / sqq, 0), a)
            b = np.where(wrong_sign, 0, b)
        a = np.maximum(a, 0)
        err = a * a * sqq + count * b * b + sxx + 2 * a * b * sq - 2 * a * sqx - 2 * b * sx
        return a, b, err

    def lloyd(a, b, err):
        """Values re-rounded with ``a, b``, then least squares; kept where the error drops."""
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(a > 0, 1 / np.where(a > 0, a, 1), 0).astype(np.float32)
        q = np.clip(np.rint((x - b.astype(np.float32)[..., None]) * inv[..., None]), 0, top)
        a2, b2, err2 = solve(q)
        better = err2 < err
        return np.where(better, a2, a), np.where(better, b2, b), np.where(better, err2, err)

    best_a = (span / top).astype(np.float64)
    best_b = lo.astype(np.float64)
    best_err = np.full(lo.shape, np.inf)
    for grid in np.linspace(top - 1, top + 1, steps, dtype=np.float32):
        q = np.clip(np.rint(shifted * (grid * inv_span)[..., None]), 0, top)
        a, b, err = solve(q)
        if polish:
            a, b, err = lloyd(a, b, err)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best_a = np.where(better, a, best_a)
        best_b = np.where(better, b, best_b)
    if polish:
        best_a, best_b, best_err = lloyd(best_a, best_b, best_err)
    return best_a, -best_b


def _fit_symmetric(x: np.ndarray, half: int, steps: int = 15) -> np.ndarray:
    """Per sub-block of ``x`` ``(n, s, L)``: a signed scale ``a`` with ``x ~ a * q``, ``q`` in
    ``-half..half-1``; the peak value maps near ``-half`` (the side with the extra level)."""
    at = np.argmax(np.abs(x), axis=2)[..., None]
    peak = np.take_along_axis(x, at, axis=2)[..., 0]
    inv_peak = np.where(peak != 0, 1 / np.where(peak != 0, peak, 1), 0).astype(np.float32)
    best_a = (peak / -half).astype(np.float64)
    best_gain = np.full(peak.shape, -np.inf)
    for grid in np.linspace(half - 1, half + 1, steps, dtype=np.float32):
        q = np.clip(np.rint(x * (-grid * inv_peak)[..., None]), -half, half - 1)
        sqq = np.einsum("nsl,nsl->ns", q, q).astype(np.float64)
        sqx = np.einsum("nsl,nsl->ns", q, x).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = np.where(sqq > 0, sqx * sqx / sqq, 0)  # error = sum(x^2) - gain
            a = np.where(sqq > 0, sqx / sqq, 0)
        better = gain > best_gain
        best_gain = np.where(better, gain, best_gain)
        best_a = np.where(better, a, best_a)
    return best_a


def _super_scale(sub: np.ndarray, top: float) -> np.ndarray:
    """The fp16-representable super-scale ``(n, 1)`` that maps ``sub``'s largest magnitude
    (keeping its sign) onto ``top``; never rounded down to zero while ``sub`` is not all zero
    (tiny blocks then get coarse sub-block scales rather than none)."""
    at = np.argmax(np.abs(sub), axis=1)[:, None]
    peak = np.take_along_axis(sub, at, axis=1)
    d = np.clip(peak / top, -_F16_MAX, _F16_MAX).astype(np.float16).astype(np.float32)
    return np.where((d == 0) & (peak != 0), np.copysign(_F16_TINY, peak / top), d)


def _quantize_by(sub: np.ndarray, d: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """``sub / d`` rounded into ``lo..hi`` (0 where ``d`` is 0), as int16."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(d != 0, np.rint(sub / np.where(d != 0, d, 1)), 0)
    return np.clip(q, lo, hi).astype(np.int16)


def _levels(x: np.ndarray, step: np.ndarray, offset: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Each value's level once the stored scales are final: ``(x + offset) / step`` rounded."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.rint((x + offset[..., None]) / np.where(step != 0, step, 1)[..., None])
    q = np.where(step[..., None] != 0, q, 0)
    return np.clip(q, lo, hi).astype(np.int16)


def _pick_codes(xs, d, sc0, sc_lo, sc_hi, q_lo, q_hi, dmin=None, m0=None):
    """Final integer codes per sub-block: each scale code (and minimum code) rounded, one
    below and one above is tried with its values re-rounded, and the pair whose stored values
    reconstruct the sub-block best is kept (rounding alone can clip a sub-block's peak).
    Returns ``(sc, m, q)``, ``q`` shaped like ``xs``."""
    moves = (-1, 0, 1)
    best_err = best_sc = best_m = best_q = None
    for ds in moves:
        sc = np.clip(sc0 + ds, sc_lo, sc_hi)
        step = d * sc.astype(np.float32)
        for dm in moves if dmin is not None else (0,):
            if dmin is None:
                m, offset = sc * 0, np.zeros_like(step)
            else:
                m = np.clip(m0 + dm, 0, sc_hi)
                offset = dmin * m.astype(np.float32)
            q = _levels(xs, step, offset, q_lo, q_hi)
            err = np.square(step[..., None] * q - offset[..., None] - xs).sum(axis=2)
            if best_err is None:
                best_err, best_sc, best_m, best_q = err, sc, m, q
                continue
            better = err < best_err
            best_err = np.where(better, err, best_err)
            best_sc = np.where(better, sc, best_sc)
            best_m = np.where(better, m, best_m)
            best_q = np.where(better[..., None], q, best_q)
    return best_sc, best_m, best_q


_SLACK = 0.02
"""How much more squared error Q2_K's refit super-scales, and then its polished, unshrunk fit
against the plain one, may store before the fit it would replace is kept: the refit trades a
little error for less bias, and the polished grid can lose to the plain one (fp16-subnormal
super-scales)."""


def _unshrink_super_scales(xs, d, dmin, sc, m, q, share: float):
    """Refits each super-block's ``d, dmin`` with its integer codes held, part of the way from
    least squares to the norm-keeping fit.

    Value ``e`` is ``d * u - dmin * v`` with ``u = sc * q`` and ``v = m``. Least squares leaves
    the error orthogonal to the reconstruction, so the reconstruction is short along ``x``:
    ``x . x_hat = |x|^2 - |err|^2``, and a dot product with an input that follows the weights
    comes out biased toward zero by about the squared error. The norm-keeping fit instead solves
    ``sum(err) = 0`` and ``x . err = 0`` (just the latter where every ``m`` is 0). ``share`` of
    the way costs about ``share**2`` of the norm-keeping fit's extra error (that extra is about
    ``|err|^2 / |x_hat - mean|^2`` of the error, a few percent at 2 bits) for ``share`` of the
    bias. A super-block keeps its old scales where the new ones are not a positive ``d`` and a
    ``dmin`` of the old sign, or its error would grow by more than `_SLACK`.
    """
    u = (sc[..., None] * q).astype(np.float64)
    v = np.broadcast_to(m[..., None], u.shape).astype(np.float64)
    x = xs.astype(np.float64)

    def dot(p, r):
        return np.einsum("nsl,nsl->n", p, r)

    uu, uv, vv, ux, vx, xx = dot(u, u), dot(u, v), dot(v, v), dot(u, x), dot(v, x), dot(x, x)
    su, sv, sx = u.sum(axis=(1, 2)), v.sum(axis=(1, 2)), x.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ls_det, iv_det = uu * vv - uv * uv, sv * ux - su * vx
        one = vv == 0  # every m is 0: dmin does not matter, only d is refitted
        two = ~one & (ls_det > 0) & (iv_det != 0)
        ls_d = np.where(two, (vv * ux - uv * vx) / ls_det, ux / uu)
        ls_m = np.where(two, (uv * ux - uu * vx) / ls_det, dmin[:, 0])
        iv_d = np.where(two, (sv * xx - vx * sx) / iv_det, xx / ux)
        iv_m = np.where(two, (su * xx - ux * sx) / iv_det, dmin[:, 0])
        new_d = (1 - share) * ls_d + share * iv_d
        new_m = (1 - share) * ls_m + share * iv_m
    new_d = np.clip(np.nan_to_num(new_d), -_F16_MAX, _F16_MAX).astype(np.float16)
    new_m = np.clip(np.nan_to_num(new_m), -_F16_MAX, _F16_MAX).astype(np.float16)
    new_d, new_m = new_d.astype(np.float32)[:, None], new_m.astype(np.float32)[:, None]
    valid = (one | two)[:, None] & (new_d > 0) & (new_m * dmin >= 0) & ((new_m != 0) == (dmin != 0))

    new_error = _affine_error(xs, xs.shape[2], new_d, new_m, sc, m, q)
    old_error = _affine_error(xs, xs.shape[2], d, dmin, sc, m, q)
    keep = valid & (new_error <= old_error * (1 + _SLACK))[:, None]
    return np.where(keep, new_d, d), np.where(keep, new_m, dmin)


def _affine_error(x, sub, d, dmin, sc, m, q) -> np.ndarray:
    """Each super-block's squared error, as its stored fields decode (float64; NaN where a
    value is not finite)."""
    n = x.shape[0]
    step = (d * sc).astype(np.float64)[..., None]
    offset = (dmin * m).astype(np.float64)[..., None]
    values = step * q.reshape(n, QK_K // sub, sub) - offset
    with np.errstate(invalid="ignore", over="ignore"):
        return np.square(values - x.reshape(n, QK_K // sub, sub)).sum(axis=(1, 2))


def _affine_levels(
    x: np.ndarray, sub: int, top: int, scale_top: int, steps=15, polish=False, unshrink=0.0
):
    """Shared by Q2_K/Q4_K/Q5_K: returns (d, dmin, sc, m, q) with q shaped (n, 256)."""
    n = x.shape[0]
    xs = x.reshape(n, QK_K // sub, sub)
    a, m_val = _fit_affine(xs, top, steps, polish)  # m_val <= 0 in all-positive super-blocks
    d = _super_scale(a, scale_top)
    dmin = _super_scale(m_val, scale_top)
    sc = _quantize_by(a, d, 0, scale_top)
    m = _quantize_by(m_val, dmin, 0, scale_top)
    sc, m, q = _pick_codes(xs, d, sc, 0, scale_top, 0, top, dmin, m)
    if unshrink:
        d, dmin = _unshrink_super_scales(xs, d, dmin, sc, m, q, unshrink)
    return d, dmin, sc, m, q.reshape(n, QK_K)


def _symmetric_levels(x: np.ndarray, half: int, scale_half: int):
    """Shared by Q3_K/Q6_K: sixteen sub-blocks of 16; returns (d, sc, q) with q in -half..half-1."""
    n = x.shape[0]
    xs = x.reshape(n, 16, 16)
    a = _fit_symmetric(xs, half)
    d = _super_scale(a, -scale_half)
    sc = _quantize_by(a, d, -scale_half, scale_half - 1)
    sc, _, q = _pick_codes(xs, d, sc, -scale_half, scale_half - 1, -half, half - 1)
    return d, sc, q.reshape(n, QK_K)


# ---- packing --------------------------------------------------------------------------------


def _pack_crumbs(q: np.ndarray) -> np.ndarray:
    """Inverse of _crumbs: ``(n, 128*h)`` values in 0..3 -> ``(n, 32*h)`` bytes."""
    n = q.shape[0]
    parts = q.astype(np.uint8).reshape(n, -1, 4, 32) << np.array([0, 2, 4, 6], np.uint8)[:, None]
    return np.bitwise_or.reduce(parts, axis=2).reshape(n, -1)


def _pack_bits(bits: np.ndarray) -> np.ndarray:
    """Inverse of _bits: 256 values in 0..1 -> 32 bytes."""
    n = bits.shape[0]
    parts = bits.astype(np.uint8).reshape(n, 8, 32) << np.arange(8, dtype=np.uint8)[:, None]
    return np.bitwise_or.reduce(parts, axis=1)


def _pack_nibbles(q: np.ndarray, run: int) -> np.ndarray:
    """Inverse of _nibbles: values in 0..15 -> bytes, runs of ``run``."""
    n = q.shape[0]
    pairs = q.astype(np.uint8).reshape(n, -1, 2, run)
    return (pairs[:, :, 0] | (pairs[:, :, 1] << 4)).reshape(n, -1)


def _pack_scales_q4k(sc: np.ndarray, m: np.ndarray) -> np.ndarray:
    sc, m = sc.astype(np.uint8), m.astype(np.uint8)
    first = sc[:, :4] | ((sc[:, 4:] >> 4) << 6)
    second = m[:, :4] | ((m[:, 4:] >> 4) << 6)
    mixed = (sc[:, 4:] & 0x0F) | ((m[:, 4:] & 0x0F) << 4)
    return np.concatenate([first, second, mixed], axis=1)


def _pack_scales_q3k(sc: np.ndarray) -> np.ndarray:
    n = sc.shape[0]
    six = (sc + 32).astype(np.uint8)
    low = (six & 0x0F).reshape(n, 2, 8)
    high = (six >> 4).reshape(n, 4, 4) << np.array([0, 2, 4, 6], np.uint8)[:, None]
    return np.concatenate([low[:, 0] | (low[:, 1] << 4), np.bitwise_or.reduce(high, 1)], axis=1)


def _encode_q2_k(x: np.ndarray) -> np.ndarray:
    polished = _affine_levels(x, 16, 3, 15, steps=8, polish=True, unshrink=0.3)
    plain = _affine_levels(x, 16, 3, 15)
    worse = _affine_error(x, 16, *polished) > _affine_error(x, 16, *plain) * (1 + _SLACK)
    d, dmin, sc, m, q = (
        np.where(worse[:, None], b, a) for a, b in zip(polished, plain, strict=True)
    )
    scales = (sc | (m << 4)).astype(np.uint8)
    return np.concatenate([scales, _pack_crumbs(q), write_f16(d), write_f16(dmin)], axis=1)


def _encode_q3_k(x: np.ndarray) -> np.ndarray:
    d, sc, q = _symmetric_levels(x, 4, 32)
    u = q + 4
    parts = [_pack_bits(u >> 2), _pack_crumbs(u & 3), _pack_scales_q3k(sc), write_f16(d)]
    return np.concatenate(parts, axis=1)


def _encode_q4_k(x: np.ndarray) -> np.ndarray:
    d, dmin, sc, m, q = _affine_levels(x, 32, 15, 63)
    parts = [write_f16(d), write_f16(dmin), _pack_scales_q4k(sc, m), _pack_nibbles(q, 32)]
    return np.concatenate(parts, axis=1)


def _encode_q5_k(x: np.ndarray) -> np.ndarray:
    d, dmin, sc, m, q = _affine_levels(x, 32, 31, 63)
    parts = [
        write_f16(d),
        write_f16(dmin),
        _pack_scales_q4k(sc, m),
        _pack_bits(q >> 4),
        _pack_nibbles(q & 0x0F, 32),
    ]
    return np.concatenate(parts, axis=1)


def _encode_q6_k(x: np.ndarray) -> np.ndarray:
    d, sc, q = _symmetric_levels(x, 32, 128)
    u = q + 32
    parts = [
        _pack_nibbles(u & 0x0F, 64),
        _pack_crumbs(u >> 4),
        sc.astype(np.int8).view(np.uint8),
        write_f16(d),
    ]
    return np.concatenate(parts, axis=1)


_F16 = 2  # bytes of one fp16 super-scale
_SCALES_12 = 12  # the twelve bytes of packed 6-bit sub-block scales

# Bytes per block as the sum of the struct's fields (see the layout table above).
Q2_K = block_format("q2_k", 10, QK_K, QK_K // 16 + QK_K // 4 + 2 * _F16, _decode_q2_k, _encode_q2_k)
Q3_K = block_format(
    "q3_k", 11, QK_K, QK_K // 8 + QK_K // 4 + _SCALES_12 + _F16, _decode_q3_k, _encode_q3_k
)
Q4_K = block_format("q4_k", 12, QK_K, 2 * _F16 + _SCALES_12 + QK_K // 2, _decode_q4_k, _encode_q4_k)
Q5_K = block_format(
    "q5_k", 13, QK_K, 2 * _F16 + _SCALES_12 + QK_K // 8 + QK_K // 2, _decode_q5_k, _encode_q5_k
)
Q6_K = block_format(
    "q6_k", 14, QK_K, QK_K // 2 + QK_K // 4 + QK_K // 16 + _F16, _decode_q6_k, _encode_q6_k
)
