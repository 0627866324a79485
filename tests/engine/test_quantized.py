"""Quantized tables through every layer: only the rows read are dequantized, bit-exact with
`gguf.quants.dequantize`."""

import ml_dtypes
import numpy as np
import pytest
from conftest import assert_same_bits
from gguf import GGMLQuantizationType
from gguf.quants import dequantize as gguf_dequantize

import ember.nn as nn
from ember.dtype import DType
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType, Weight
from ember.quant import FORMATS

ENCODINGS = [e for e in QuantizationEncoding if e.is_gguf]
IDS = TensorType(DType.int32, ["batch", "seq"])


def quantized_table(encoding, vocab=50, hidden=512, seed=0):
    values = np.random.default_rng(seed).standard_normal((vocab, hidden)).astype(np.float32)
    return FORMATS[encoding.name].quantize(values)


def reference(encoding, blocks):
    return gguf_dequantize(blocks, GGMLQuantizationType[encoding.value])


def test_encodings_agree_with_the_reference_formats():
    for encoding in ENCODINGS:
        fmt = FORMATS[encoding.name]
        assert (fmt.block_elements, fmt.block_bytes) == (
            encoding.elements_per_block,
            encoding.block_size,
        )


@pytest.mark.parametrize("encoding", ENCODINGS, ids=lambda e: e.name)
def test_lookup_is_bit_exact(session, encoding, quantized_rows):
    table = quantized_rows(encoding.name, 50, 512)
    emb = nn.EmbeddingV2(50, table.shape[1], DType.uint8, quantization_encoding=encoding, name="q")
    with Graph("q", input_types=[IDS]) as g:
        g.output(emb(g.inputs[0]))
    model = session.load(g, {"q": table})
    ids = np.random.default_rng(1).integers(0, 50, (3, 7)).astype(np.int32)
    result = model.execute(ids)[0].to_numpy()
    assert_same_bits(result, reference(encoding, table[ids]))
    if session.backend == "native":  # bound in place; XLA copies it to its device once
        assert any(np.shares_memory(a, table) for a in model._executable._plan.preset.values())


@pytest.mark.parametrize("out_dtype", [DType.bfloat16, DType.float16])
@pytest.mark.parametrize("encoding", [QuantizationEncoding.Q4_K, QuantizationEncoding.Q8_0])
def test_narrow_outputs(session, encoding, out_dtype):
    table = quantized_table(encoding, vocab=20, hidden=256)
    emb = nn.EmbeddingV2(
        20, table.shape[1], DType.uint8, quantization_encoding=encoding, name="q",
        output_dtype=out_dtype,
    )  # fmt: skip
    with Graph("q", input_types=[IDS]) as g:
        g.output(emb(g.inputs[0]))
    ids = np.array([[0, 19, 5]], np.int32)
    result = session.load(g, {"q": table}).execute(ids)[0].to_numpy()
    assert_same_bits(result, reference(encoding, table[ids]).astype(out_dtype.to_numpy()))


def test_large_lookup_runs_in_parallel_and_matches(session):
    encoding = QuantizationEncoding.Q6_K
    table = quantized_table(encoding, vocab=300, hidden=1024)
    emb = nn.EmbeddingV2(300, table.shape[1], DType.uint8, quantization_encoding=encoding)
    with Graph("q", input_types=[IDS]) as g:
        g.output(emb(g.inputs[0]))
    ids = np.random.default_rng(2).integers(0, 300, (4, 256)).astype(np.int32)
    result = session.load(g, {"weight": table}).execute(ids)[0].to_numpy()
    assert_same_bits(result, reference(encoding, table[ids]))


def test_basic_embedding_over_a_quantized_weight_and_policies(session):
    encoding = QuantizationEncoding.Q4_0
    table = quantized_table(encoding, vocab=10, hidden=64)
    weight = Weight("w", DType.uint8, table.shape, quantization_encoding=encoding)
    with Graph("q", input_types=[IDS]) as g:
        g.output(nn.Embedding(weight)(g.inputs[0]))
    model = session.load(g, {"w": table})
    ids = np.array([[9, 0]], np.int32)
    assert_same_bits(model.execute(ids)[0].to_numpy(), reference(encoding, table[ids]))
    with pytest.raises(IndexError, match=r"id 10 at position \(0, 1\)"):
        model.execute(np.array([[0, 10]], np.int32))
    zero = nn.EmbeddingV2(10, table.shape[1], DType.uint8, quantization_encoding=encoding,
                          name="w", out_of_range="zero")  # fmt: skip
    with Graph("z", input_types=[IDS]) as g:
        g.output(zero(g.inputs[0]))
    result = session.load(g, {"w": table}).execute(np.array([[3, 12]], np.int32))[0].to_numpy()
    assert_same_bits(result[0, 0], reference(encoding, table[3]))
    assert not result[0, 1].any()


@pytest.mark.parametrize(
    "encoding",
    [e for e in QuantizationEncoding if e.is_gguf or e.is_rowwise],
    ids=lambda e: e.name,
)
def test_a_zeroed_row_is_positive_zero_fused_or_not(session, encoding, quantized_rows):
    """Zero bytes decode to -0.0 in some formats (Q4_0's ``d * (q - 8)``); a row the gather
    zeroed is +0.0 whether the decode fuses with the gather or runs after it."""
    from ember.graph import ops

    table = quantized_rows(encoding.name, 6, 256)
    weight = Weight("w", DType.uint8, table.shape, quantization_encoding=encoding)
    with Graph("z", input_types=[TensorType(DType.int64, ["n"])]) as g:
        rows = ops.gather(weight, g.inputs[0], axis=0, out_of_range="zero")
        g.output(ops.dequantize(encoding, rows))
    with Graph("unfused", input_types=[TensorType(DType.int64, ["n"])]) as unfused:
        rows = ops.gather(weight, unfused.inputs[0], axis=0, out_of_range="zero")
        unfused.output(ops.dequantize(encoding, rows), rows)
    ids = np.array([4, 9, 0], np.int64)
    fused_values = session.load(g, {"w": table}).execute(ids)[0].to_numpy()
    unfused_values, gathered = session.load(unfused, {"w": table}).execute(ids)
    assert not gathered.to_numpy()[1].any()
    assert_same_bits(unfused_values.to_numpy(), fused_values)
    assert not np.signbit(fused_values[1]).any() and not fused_values[1].any()


@pytest.mark.parametrize("encoding", [QuantizationEncoding.Q4_K, QuantizationEncoding.Q5_0])
def test_vocab_parallel_quantized_equals_unsharded(session, encoding):
    table = quantized_table(encoding, vocab=23, hidden=256)
    devices = [DeviceRef.CPU(i) for i in range(3)]
    emb = nn.VocabParallelEmbedding(23, table.shape[1], DType.uint8, devices=devices,
                                    quantization_encoding=encoding, name="q")  # fmt: skip
    with Graph("vp", input_types=[IDS]) as g:
        g.output(*emb(g.inputs[0]))
    ids = np.arange(23, dtype=np.int32).reshape(1, 23)
    want = reference(encoding, table[ids])
    for out in session.load(g, {"q": table}).execute(ids):
        # equal values: the sum over shards turns a -0.0 into 0.0, as any all-reduce does
        np.testing.assert_array_equal(out.to_numpy(), want)


def test_bad_quantized_weights_name_the_encoding_and_width(session):
    encoding = QuantizationEncoding.Q4_K
    emb = nn.EmbeddingV2(10, 288, DType.uint8, quantization_encoding=encoding, name="q")
    with Graph("q", input_types=[IDS]) as g:
        g.output(emb(g.inputs[0]))
    with pytest.raises(TypeError, match=r"Q4_K blocks: expected uint8 of shape \(10, 288\)"):
        session.load(g, {"q": np.zeros((10, 512), np.float32)})
    with pytest.raises(ValueError, match=r"2 blocks of 144 bytes, 512 values\), got uint8"):
        session.load(g, {"q": np.zeros((10, 280), np.uint8)})


def test_unfused_dequantize_of_an_input(session):
    encoding = QuantizationEncoding.Q3_K
    blocks = quantized_table(encoding, vocab=4, hidden=256)
    with Graph("d", input_types=[TensorType(DType.uint8, ["n", blocks.shape[1]])]) as g:
        from ember.graph import ops

        g.output(ops.dequantize(encoding, g.inputs[0], out_dtype=DType.bfloat16))
    result = session.load(g).execute(blocks)[0].to_numpy()
    assert_same_bits(result, reference(encoding, blocks).astype(ml_dtypes.bfloat16))


def test_cast_after_a_narrow_dequantize_keeps_its_rounding(session):
    from ember.graph import ops

    encoding = QuantizationEncoding.Q8_0
    table = quantized_table(encoding, vocab=8, hidden=64)
    weight = Weight("q", DType.uint8, table.shape, quantization_encoding=encoding)
    with Graph("g", input_types=[IDS]) as g:
        rows = ops.gather(weight, g.inputs[0], axis=0)
        g.output(ops.dequantize(encoding, rows, out_dtype=DType.bfloat16).cast(DType.float32))
    ids = np.array([[0, 7, 3]], np.int32)
    result = session.load(g, {"q": table}).execute(ids)[0].to_numpy()
    want = reference(encoding, table[ids]).astype(ml_dtypes.bfloat16).astype(np.float32)
    assert_same_bits(result, want)


def test_gather_of_a_higher_rank_quantized_table(session):
    from ember.graph import ops

    encoding = QuantizationEncoding.Q8_0
    table = quantized_table(encoding, vocab=6, hidden=64).reshape(3, 2, 68)
    weight = Weight("q", DType.uint8, table.shape, quantization_encoding=encoding)
    with Graph("g", input_types=[TensorType(DType.int32, ["n"])]) as g:
        g.output(ops.dequantize(encoding, ops.gather(weight, g.inputs[0], axis=0)))
    ids = np.array([2, 0], np.int32)
    result = session.load(g, {"q": table}).execute(ids)[0].to_numpy()
    assert_same_bits(result, reference(encoding, table[ids]))
