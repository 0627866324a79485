"""Rowwise-quantized tables (ROWWISE_INT8, _INT4, _INT2) through `nn.EmbeddingV2` and
`nn.EmbeddingBag` on both backends.

Lookups equal the reference decoder bit for bit, and torch's rowwise-offsets ops with one id a
bag. Bags are within `n * 2**-24 * sum |w_i x_i|` of the float64 pooled decoded rows (float32
accumulation of `n` terms), as are torch's on the same torch-prepacked table; max is exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_same_bits

import ember.nn as nn
from ember.dtype import DType
from ember.graph import Graph, QuantizationEncoding, TensorType, ops
from ember.quant import FORMATS

NAMES = ["rowwise_int8", "rowwise_int4", "rowwise_int2"]
VOCAB, HIDDEN = 50, 64
IDS = TensorType(DType.int32, ["batch", "seq"])
TORCH_OPS = {
    "rowwise_int8": ("embedding_bag_byte_prepack", "embedding_bag_byte_rowwise_offsets"),
    "rowwise_int4": ("embedding_bag_4bit_prepack", "embedding_bag_4bit_rowwise_offsets"),
    "rowwise_int2": ("embedding_bag_2bit_prepack", "embedding_bag_2bit_rowwise_offsets"),
}
EPS32 = 2.0**-24


def float_table(vocab=VOCAB, hidden=HIDDEN, seed=0):
    rng = np.random.default_rng(seed)
    scales = np.exp2(rng.integers(-8, 8, (vocab, 1)))
    return (rng.standard_normal((vocab, hidden)) * scales).astype(np.float32)


def random_rows(name, vocab, hidden, seed):
    """Random levels under random finite scales and biases (float32 exponents within 2**+-60
    for INT8, so that no value is a float32 subnormal, which XLA:CPU flushes)."""
    rng = np.random.default_rng(seed)
    fmt = FORMATS[name]
    rows = rng.integers(0, 256, (vocab, QuantizationEncoding[name.upper()].row_bytes(hidden)),
                        dtype=np.uint8)  # fmt: skip
    tail = rng.standard_normal((vocab, 2))
    if name == "rowwise_int8":
        tail *= np.exp2(rng.integers(-60, 60, (vocab, 2)))
    rows[:, -fmt.row_tail_bytes :] = tail.astype("<f4" if name == "rowwise_int8" else "<f2").view(
        np.uint8
    )
    return rows


def lookup(session, encoding, table, ids, output_dtype=None):
    emb = nn.EmbeddingV2(
        table.shape[0], table.shape[1], DType.uint8, quantization_encoding=encoding, name="q",
        **({} if output_dtype is None else {"output_dtype": output_dtype}),
    )  # fmt: skip
    with Graph("q", input_types=[TensorType(DType.from_numpy(ids.dtype), list(ids.shape))]) as g:
        g.output(emb(g.inputs[0]))
    return session.load(g, {"q": table}).execute(ids)[0].to_numpy()


@pytest.mark.parametrize("name", NAMES)
def test_lookup_is_bit_exact(session, name):
    encoding = QuantizationEncoding[name.upper()]
    ids = np.random.default_rng(1).integers(0, VOCAB, (3, 7)).astype(np.int32)
    for table in (FORMATS[name].quantize(float_table()), random_rows(name, VOCAB, HIDDEN, 2)):
        got = lookup(session, encoding, table, ids)
        assert got.shape == (3, 7, HIDDEN)
        assert_same_bits(got, FORMATS[name].dequantize(table[ids]))


@pytest.mark.parametrize("name", NAMES)
def test_large_lookup_in_parallel(session, name):
    encoding = QuantizationEncoding[name.upper()]
    table = FORMATS[name].quantize(float_table(vocab=300, hidden=512, seed=3))
    ids = np.random.default_rng(4).integers(0, 300, (4, 256)).astype(np.int64)
    assert_same_bits(lookup(session, encoding, table, ids), FORMATS[name].dequantize(table[ids]))


@pytest.mark.parametrize("out_dtype", [DType.bfloat16, DType.float16])
@pytest.mark.parametrize("name", NAMES)
def test_narrow_outputs(session, name, out_dtype):
    encoding = QuantizationEncoding[name.upper()]
    table = FORMATS[name].quantize(float_table(seed=5))
    ids = np.array([[0, 49, 5, 5]], np.int32)
    want = FORMATS[name].dequantize(table[ids]).astype(out_dtype.to_numpy())
    assert_same_bits(lookup(session, encoding, table, ids, out_dtype), want)


@pytest.mark.parametrize("name", NAMES)
def test_out_of_range_policies(session, name):
    encoding = QuantizationEncoding[name.upper()]
    table = FORMATS[name].quantize(float_table(vocab=10, seed=6))
    emb = nn.EmbeddingV2(10, table.shape[1], DType.uint8, quantization_encoding=encoding,
                         name="q", out_of_range="zero")  # fmt: skip
    with Graph("q", input_types=[TensorType(DType.int64, ["n"])]) as g:
        g.output(emb(g.inputs[0]))
    got = session.load(g, {"q": table}).execute(np.array([3, 10, -1, 0]))[0].to_numpy()
    want = FORMATS[name].dequantize(table[[3, 0, 0, 0]])
    want[1:3] = 0
    assert_same_bits(got, want)


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_native_kernel_on_any_bytes(name, parallel):
    """The compiled decoders on raw random bytes: subnormal, infinite and NaN scales and biases
    included (NaN payloads are unspecified); the native backend keeps subnormals."""
    from ember.engine.backends.native.kernels.dequantize_gather import gather_dequantize
    from ember.engine.backends.native.kernels.out_of_range import ERROR

    rng = np.random.default_rng(14)
    table = rng.integers(0, 256, (400, QuantizationEncoding[name.upper()].row_bytes(32)),
                         dtype=np.uint8)  # fmt: skip
    if name == "rowwise_int8":  # float32 exponents near the subnormal range too
        tail = rng.standard_normal((400, 2)) * np.exp2(rng.integers(-149, -100, (400, 2)))
        table[::2, -8:] = tail[::2].astype("<f4").view(np.uint8)
    ids = rng.integers(0, 400, 3000)
    out = np.empty((3000, 32), np.float32)
    assert gather_dequantize(name, table, ids, 0, ERROR, out, parallel) == -1
    assert_same_bits(out, FORMATS[name].dequantize(table[ids]), nan_meets_nan=True)


@pytest.mark.parametrize("name", NAMES)
def test_dequantize_of_rows_given_as_an_input(session, name):
    """`ops.dequantize` alone, on a 3-D input of rows (no gather to fuse with)."""
    encoding = QuantizationEncoding[name.upper()]
    rows = random_rows(name, 12, HIDDEN, seed=13).reshape(2, 6, -1)
    with Graph("d", input_types=[TensorType(DType.uint8, list(rows.shape))]) as g:
        g.output(ops.dequantize(encoding, g.inputs[0]))
    got = session.load(g, {}).execute(rows)[0].to_numpy()
    assert_same_bits(got, FORMATS[name].dequantize(rows))


@pytest.mark.parametrize("name", NAMES)
def test_a_row_too_small_for_scale_and_bias_is_a_clear_error(name):
    encoding = QuantizationEncoding[name.upper()]
    tail = FORMATS[name].row_tail_bytes
    with pytest.raises(ValueError, match=rf"{name} rows end with {tail} bytes of scale and bias"):
        nn.EmbeddingV2(VOCAB, tail, DType.uint8, quantization_encoding=encoding)


def test_a_table_of_the_wrong_width_names_its_layout(session):
    encoding = QuantizationEncoding.ROWWISE_INT8
    emb = nn.EmbeddingV2(VOCAB, 72, DType.uint8, quantization_encoding=encoding, name="q")
    with Graph("q", input_types=[IDS]) as g:
        g.output(emb(g.inputs[0]))
    table = FORMATS["rowwise_int8"].quantize(float_table(hidden=32))
    with pytest.raises(ValueError, match=r"64 values, then a float32 scale and bias\), got uint8"):
        session.load(g, {"q": table})


# ---- bags -----------------------------------------------------------------------------------


def pooled_reference(decoded, ids, offsets, weights, mode):
    """float64 pooling of the decoded rows, and the float32 accumulation bound."""
    ends = [*offsets[1:], len(ids)]
    out = np.zeros((len(offsets), decoded.shape[1]))
    bound = np.zeros_like(out)
    for b, (start, end) in enumerate(zip(offsets, ends, strict=True)):
        if start == end:
            continue
        w = np.ones(end - start) if weights is None else weights[start:end].astype(np.float64)
        terms = decoded[ids[start:end]].astype(np.float64) * w[:, None]
        if mode == "max":
            out[b] = terms.max(axis=0)
            continue
        out[b] = terms.sum(axis=0)
        bound[b] = (end - start + 1) * EPS32 * np.abs(terms).sum(axis=0)
        if mode == "mean":
            out[b] /= end - start
            bound[b] /= end - start
    return out, bound


def run_bag(session, encoding, table, ids, offsets, weights, mode):
    bag = nn.EmbeddingBag(table.shape[0], table.shape[1], DType.uint8,
                          quantization_encoding=encoding, name="q", mode=mode)  # fmt: skip
    types = [TensorType(DType.int64, ["n"]), TensorType(DType.int64, ["b"])]
    if weights is not None:
        types.append(TensorType(DType.float32, ["n"]))
    with Graph("q", input_types=types) as g:
        g.output(bag(*g.inputs))
    args = [ids, offsets] + ([weights] if weights is not None else [])
    return session.load(g, {"q": table}).execute(*args)[0].to_numpy()


BAG_IDS = np.random.default_rng(7).integers(0, VOCAB, 300)
BAG_IDS[20:25] = 3  # repeated ids within a bag
OFFSETS = np.array([0, 10, 10, 150, 299])
WEIGHTS = np.random.default_rng(8).standard_normal(300).astype(np.float32)


@pytest.mark.parametrize("mode", ["sum", "mean", "weighted", "max"])
@pytest.mark.parametrize("name", NAMES)
def test_bags_pool_the_decoded_rows(session, name, mode):
    encoding = QuantizationEncoding[name.upper()]
    table = FORMATS[name].quantize(float_table(seed=9))
    weights = WEIGHTS if mode == "weighted" else None
    pool = "sum" if mode == "weighted" else mode
    got = run_bag(session, encoding, table, BAG_IDS, OFFSETS, weights, pool)
    want, bound = pooled_reference(FORMATS[name].dequantize(table), BAG_IDS, OFFSETS, weights, pool)
    assert got.shape == (len(OFFSETS), HIDDEN) and got.dtype == np.float32
    if mode == "max":
        np.testing.assert_array_equal(got, want.astype(np.float32))
    else:
        assert (np.abs(got - want) <= bound).all(), np.abs(got - want).max()
    assert not got[1].any()  # the empty bag


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="torch's rowwise-offsets ops are the reference")


def torch_bags(torch, name, packed, ids, offsets, weights, mode):
    """torch's pooled bags; its quantized ops sum whatever the mode (torch 2.13), so a mean is
    their sum over the bag's length."""
    op = getattr(torch.ops.quantized, TORCH_OPS[name][1])
    sums = op(
        torch.from_numpy(packed), torch.from_numpy(ids), torch.from_numpy(offsets), mode=0,
        per_sample_weights=None if weights is None else torch.from_numpy(weights),
    ).numpy()  # fmt: skip
    if mode == "sum":
        return sums
    lengths = np.diff([*offsets, len(ids)])
    return sums / np.maximum(lengths, 1)[:, None].astype(np.float32)


@pytest.mark.parametrize("name", NAMES)
def test_lookups_equal_torch_bags_of_one_id(session, torch, name):
    prepack = getattr(torch.ops.quantized, TORCH_OPS[name][0])
    packed = prepack(torch.from_numpy(float_table(seed=10))).numpy()
    ids = np.random.default_rng(11).integers(0, VOCAB, 40)
    want = torch_bags(torch, name, packed, ids, np.arange(40), None, "sum")
    got = lookup(session, QuantizationEncoding[name.upper()], packed, ids.astype(np.int32))
    assert_same_bits(got, want)


def magnitudes(name, packed):
    """Each value's ``q * |scale| + |bias|``: what torch's bags round, as they scale the scale
    and the bias by the sample's weight before the fused multiply-add."""
    fmt = FORMATS[name]
    tail = packed[:, -fmt.row_tail_bytes :].copy().view("<f4" if name == "rowwise_int8" else "<f2")
    absolute = packed.copy()
    absolute[:, -fmt.row_tail_bytes :] = np.abs(tail).view(np.uint8)
    return fmt.dequantize(absolute)


@pytest.mark.parametrize("mode", ["sum", "mean", "weighted"])
@pytest.mark.parametrize("name", NAMES)
def test_bags_match_torch_rowwise_offsets(session, torch, name, mode):
    """Within the bound of ours plus torch's: float32 accumulation, and in torch's the roundings
    of ``w * scale`` and ``w * bias``, `(n + 3) * 2**-24 * sum |w| (q |scale| + |bias|)`."""
    prepack = getattr(torch.ops.quantized, TORCH_OPS[name][0])
    packed = prepack(torch.from_numpy(float_table(seed=12))).numpy()
    weights = WEIGHTS if mode == "weighted" else None
    pool = "sum" if mode == "weighted" else mode
    ids = BAG_IDS.astype(np.int64)
    want = torch_bags(torch, name, packed, ids, OFFSETS, weights, pool)
    got = run_bag(session, QuantizationEncoding[name.upper()], packed, ids, OFFSETS, weights, pool)
    exact, bound = pooled_reference(FORMATS[name].dequantize(packed), ids, OFFSETS, weights, pool)
    size, _ = pooled_reference(magnitudes(name, packed), ids, OFFSETS,
                               None if weights is None else np.abs(weights), pool)  # fmt: skip
    lengths = np.diff([*OFFSETS, len(ids)])[:, None]
    torch_bound = (lengths + 3) * EPS32 * size
    assert (np.abs(want - exact) <= torch_bound).all()
    assert (np.abs(got - exact) <= bound).all()
    assert (np.abs(got - want) <= bound + torch_bound).all(), np.abs(got - want).max()
