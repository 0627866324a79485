"""`ops.qmatmul` and the quantized LM head, every registry format on every backend: against
`gguf.quants.dequantize` of the table (ember's reference decoders for the rowwise formats) then
float64 products within the float32 dot bound; on the native backend bit for bit the dense
head's logits over the dequantized table; greedy ids and top-k equal numpy's on the same logits;
one weight for a tied lookup and head; clear errors at build time."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_same_bits, assert_within_dot_bound, assert_within_int8_bound
from gguf import GGMLQuantizationType
from gguf.quants import dequantize as gguf_dequantize

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.engine.backends.native.kernels.int8_rowdot import INT8_FORMATS
from ember.graph import Graph, QuantizationEncoding, TensorType, Weight, ops
from ember.graph.ops.constant import WEIGHT
from ember.quant import FORMATS, GGUF_FORMATS
from ember.quant.samples import sample_table

VOCAB, WIDTH = 300, 256  # 300 rows: a full chunk of the native kernel and a partial one


def encoding_of(name):
    return QuantizationEncoding[name.upper()]


def decoded(name, table):
    """The table decoded by gguf, or for the rowwise formats (no GGUF type) by ember's
    reference decoders, which `tests/quant/test_rowwise.py` checks against torch's."""
    if name not in GGUF_FORMATS:
        return FORMATS[name].dequantize(table)
    return gguf_dequantize(table, GGMLQuantizationType(FORMATS[name].ggml_type))


def qmatmul_graph(name, table, lhs_shape, int8_activations=False):
    encoding = encoding_of(name)
    weight = Weight("q", DType.uint8, table.shape, quantization_encoding=encoding)
    with Graph("qmatmul", input_types=[TensorType(DType.float32, lhs_shape)]) as g:
        g.output(
            ops.qmatmul(encoding, None, g.inputs[0], weight, int8_activations=int8_activations)
        )
    return g


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_matches_gguf_dequantize_within_the_dot_bound(session, name):
    table = sample_table(name, VOCAB, WIDTH, seed=1)
    lhs = np.random.default_rng(2).standard_normal((2, 3, WIDTH)).astype(np.float32)
    g = qmatmul_graph(name, table, ["batch", 3, WIDTH])
    [out] = session.load(g, {"q": table}).execute(lhs)
    logits = out.to_numpy()
    assert logits.shape == (2, 3, VOCAB)
    assert_within_dot_bound(logits.reshape(6, VOCAB), lhs.reshape(6, WIDTH), decoded(name, table))


@pytest.mark.parametrize("name", list(FORMATS))
def test_native_logits_are_the_dense_heads_bit_for_bit(name):
    """Each row's dot product is summed in one order whichever chunk it is decoded in."""
    session = InferenceSession(num_threads=2, backend="native")
    table = sample_table(name, 2 * VOCAB + 5, WIDTH, seed=3)  # three chunks, the last partial
    dense_table = decoded(name, table)
    hidden = np.random.default_rng(4).standard_normal((7, WIDTH)).astype(np.float32)
    [quantized] = session.load(qmatmul_graph(name, table, ["n", WIDTH]), {"q": table}).execute(
        hidden
    )
    dense = nn.EmbeddingV2(*dense_table.shape, DType.float32, name="d")
    with Graph("dense", input_types=[TensorType(DType.float32, ["n", WIDTH])]) as g:
        g.output(nn.LMHead(dense)(g.inputs[0]))
    [logits] = session.load(g, {"d": dense_table}).execute(hidden)
    np.testing.assert_array_equal(
        quantized.to_numpy().view(np.uint32), logits.to_numpy().view(np.uint32)
    )


@pytest.mark.parametrize("name", ["q4_k", "q6_k", "q8_0"])
def test_fused_formats_take_panels_from_fused_below_tokens(count_calls, name):
    """Without AVX-512, Q4_K, Q6_K and Q8_0 leave their fused kernel for decoded rows in
    panels from `FUSED_BELOW` tokens, with the same logits as the fused kernel's."""
    from ember.engine.backends.native import qmatmul

    if qmatmul.FUSED_BELOW is None:
        pytest.skip("with AVX-512 the fused kernel serves every batch")
    fused = count_calls(qmatmul, "quantized_rowdot")
    decoded = count_calls(qmatmul, "decoded_rowdot")
    session = InferenceSession(num_threads=2, backend="native")
    table = sample_table(name, VOCAB, WIDTH, seed=5)
    model = session.load(qmatmul_graph(name, table, ["n", WIDTH]), {"q": table})
    hidden = np.random.default_rng(6).standard_normal((qmatmul.FUSED_BELOW, WIDTH))
    hidden = hidden.astype(np.float32)
    [many] = model.execute(hidden)
    assert (fused[0], decoded[0]) == (0, 1)
    [few] = model.execute(np.ascontiguousarray(hidden[:-1]))
    assert (fused[0], decoded[0]) == (1, 1)
    np.testing.assert_array_equal(
        many.to_numpy()[:-1].view(np.uint32), few.to_numpy().view(np.uint32)
    )


def quantized_head_outputs(session, name, table, hidden, k):
    emb = nn.EmbeddingV2(*table.shape, DType.uint8, quantization_encoding=encoding_of(name),
                         name="tokens")  # fmt: skip
    with Graph("head", input_types=[TensorType(DType.float32, ["batch", WIDTH])]) as g:
        results = []
        for output in ("logits", "argmax", "top_k"):
            result = nn.LMHead(emb, output=output, k=k if output == "top_k" else None)(g.inputs[0])
            results.extend(result if isinstance(result, tuple) else [result])
        g.output(*results)
    return [r.to_numpy() for r in session.load(g, {"tokens": table}).execute(hidden)]


@pytest.mark.parametrize("name", ["q4_0", "q4_k", "q6_k", "iq2_xs", "mxfp4", "rowwise_int8"])
def test_quantized_head_greedy_and_top_k_match_numpy_on_the_same_logits(session, name):
    table = sample_table(name, VOCAB, WIDTH, seed=5)
    table[200:210] = table[17]  # equal rows: equal logits, ties to the lowest id
    hidden = np.random.default_rng(6).standard_normal((9, WIDTH)).astype(np.float32)
    hidden[4] = 0.0  # every logit 0: all tie
    logits, ids, values, top = quantized_head_outputs(session, name, table, hidden, k=12)
    assert_within_dot_bound(logits, hidden, decoded(name, table))
    np.testing.assert_array_equal(ids, np.argmax(logits, axis=-1))
    assert ids[4] == 0
    order = np.argsort(-logits, axis=-1, kind="stable")[:, :12]
    np.testing.assert_array_equal(top, order)
    np.testing.assert_array_equal(values, np.take_along_axis(logits, order, axis=-1))


def test_untied_quantized_head_over_a_table_value(session):
    table = sample_table("q8_0", VOCAB, WIDTH, seed=7)
    hidden = np.random.default_rng(8).standard_normal((2, WIDTH)).astype(np.float32)
    weight = Weight("output", DType.uint8, table.shape, quantization_encoding=encoding_of("q8_0"))
    with Graph("untied", input_types=[TensorType(DType.float32, ["batch", WIDTH])]) as g:
        g.output(nn.LMHead(nn.Embedding(weight))(g.inputs[0]))
    [logits] = session.load(g, {"output": table}).execute(hidden)
    assert_within_dot_bound(logits.to_numpy(), hidden, decoded("q8_0", table))


class TiedQuantizedModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.EmbeddingV2(VOCAB, 144, DType.uint8, name="token_embd.weight",
                                    quantization_encoding=QuantizationEncoding.Q4_K)  # fmt: skip
        self.head = nn.LMHead(self.embed, output="argmax")


def test_tied_quantized_lookup_and_head_share_one_weight(session):
    model = TiedQuantizedModel()
    assert list(model.raw_state_dict()) == ["embed.token_embd.weight"]  # its full name
    table = sample_table("q4_k", VOCAB, WIDTH, seed=9)
    model.load_state_dict({"embed.token_embd.weight": table})
    with Graph("tied", input_types=[TensorType(DType.int64, ["n"])]) as g:
        g.output(model.head(model.embed(g.inputs[0])))
    assert sum(node.op is WEIGHT for node in g.live_nodes()) == 1
    ids = np.array([3, 250, 7], np.int64)
    [greedy] = session.load(g, model.state_dict()).execute(ids)
    dense = decoded("q4_k", table).astype(np.float64)
    exact = dense[ids] @ dense.T
    np.testing.assert_array_equal(greedy.to_numpy(), np.argmax(exact, axis=-1))


Q4K = QuantizationEncoding.Q4_K


@pytest.mark.parametrize(
    ("encoding", "config", "lhs", "rhs", "error", "message"),
    [
        (Q4K, None, (DType.float32, [2, 256]), (DType.float32, [5, 144]), TypeError,
         "rhs must be uint8 blocks, got float32"),
        (Q4K, None, (DType.float32, [2, 256]), (DType.uint8, [5, 2, 144]), TypeError,
         r"rhs must be a matrix \(N, row bytes\)"),
        (Q4K, None, (DType.float32, [256]), (DType.uint8, [5, 144]), TypeError,
         "lhs must have rank 2 or more"),
        (Q4K, None, (DType.bfloat16, [2, 256]), (DType.uint8, [5, 144]), TypeError,
         "lhs must be float32, got bfloat16"),
        (Q4K, None, (DType.float32, [2, 512]), (DType.uint8, [5, 144]), ValueError,
         "lhs of width 512 does not match the Q4_K rows of 144 bytes, which hold 256 values"),
        (Q4K, None, (DType.float32, [2, 256]), (DType.uint8, [5, 100]), ValueError,
         "a row of 100 bytes is not a positive multiple of 144"),
        (QuantizationEncoding.GPTQ, None, (DType.float32, [2, 256]), (DType.uint8, [5, 144]),
         ValueError, "unsupported quantization encoding"),
        ("q4_k", None, (DType.float32, [2, 256]), (DType.uint8, [5, 144]), ValueError,
         "unsupported quantization encoding 'q4_k'"),
        (Q4K, object(), (DType.float32, [2, 256]), (DType.uint8, [5, 144]), ValueError,
         "takes no quantization config"),
    ],
)  # fmt: skip
def test_bad_operands_are_clear_errors_at_build_time(encoding, config, lhs, rhs, error, message):
    types = [TensorType(lhs[0], lhs[1]), TensorType(rhs[0], rhs[1])]
    with Graph("bad", input_types=types) as g, pytest.raises(error, match=message):
        ops.qmatmul(encoding, config, *g.inputs)


def test_qmatmul_takes_exactly_one_table():
    types = [TensorType(DType.float32, [2, 256]), TensorType(DType.uint8, [5, 144])]
    with Graph("bad", input_types=types) as g, pytest.raises(ValueError, match="one quantized"):
        ops.qmatmul(Q4K, None, g.inputs[0], g.inputs[1], g.inputs[1])


def test_quantized_head_width_mismatch_is_a_clear_error():
    head = nn.LMHead(nn.EmbeddingV2(VOCAB, 144, DType.uint8, quantization_encoding=Q4K))
    with (
        Graph("bad", input_types=[TensorType(DType.float32, [2, 128])]) as g,
        pytest.raises(ValueError, match=r"width 128 do not match.*expected width 256"),
    ):
        head(g.inputs[0])


def test_a_quantized_table_value_of_floats_is_a_clear_error():
    weight = Weight("output", DType.float32, [VOCAB, 144], quantization_encoding=Q4K)
    head = nn.LMHead(nn.Embedding(weight))
    with (
        Graph("bad", input_types=[TensorType(DType.float32, [2, WIDTH])]) as g,
        pytest.raises(TypeError, match="a Q4_K table must be uint8 blocks, got float32"),
    ):
        head(g.inputs[0])


def head_logits(session, name, table, hidden, int8_activations):
    emb = nn.EmbeddingV2(*table.shape, DType.uint8, quantization_encoding=encoding_of(name),
                         name="tokens")  # fmt: skip
    head = nn.LMHead(emb, int8_activations=int8_activations)
    with Graph("head", input_types=[TensorType(DType.float32, ["batch", WIDTH])]) as g:
        g.output(head(g.inputs[0]))
    [logits] = session.load(g, {"tokens": table}).execute(hidden)
    return logits.to_numpy()


@pytest.mark.parametrize("name", ["q4_k", "q6_k"])
def test_int8_activations_head_is_within_the_int8_bound(session, name):
    table = sample_table(name, VOCAB, WIDTH, seed=10)
    hidden = np.random.default_rng(11).standard_normal((5, WIDTH)).astype(np.float32)
    hidden[0, 7] = 30.0  # an outlier coarsens its block's levels
    fast = head_logits(session, name, table, hidden, int8_activations=True)
    exact = head_logits(session, name, table, hidden, int8_activations=False)
    assert_within_int8_bound(fast, hidden, decoded(name, table))
    if session.backend == "native" and name not in INT8_FORMATS:  # no AVX2: exact
        assert_same_bits(fast, exact)
    else:
        assert np.abs(fast - exact).max() > 1e-3  # the hidden states were quantized


@pytest.mark.parametrize("name", ["q4_k", "q6_k"])
def test_int8_activations_near_float32s_largest_values_stay_finite(session, name):
    """A hidden value of 2e38 once overflowed the scale products natively (inf, or the wrong
    sign); the exact logits are finite, and so are these, within the int8 bound."""
    table = sample_table(name, 4, WIDTH, seed=14)
    hidden = np.zeros((2, WIDTH), np.float32)
    hidden[0, 0], hidden[1, 200] = 2e38, -3e37
    fast = head_logits(session, name, table, hidden, int8_activations=True)
    assert np.isfinite(fast).all()
    assert_within_int8_bound(fast, hidden, decoded(name, table))


def test_int8_activations_leave_formats_without_an_integer_kernel_exact(session):
    table = sample_table("q8_0", VOCAB, WIDTH, seed=12)
    hidden = np.random.default_rng(13).standard_normal((3, WIDTH)).astype(np.float32)
    fast = head_logits(session, "q8_0", table, hidden, int8_activations=True)
    exact = head_logits(session, "q8_0", table, hidden, int8_activations=False)
    np.testing.assert_array_equal(fast.view(np.uint32), exact.view(np.uint32))


def test_int8_activations_must_be_a_bool():
    emb = nn.EmbeddingV2(VOCAB, 144, DType.uint8, quantization_encoding=Q4K)
    with pytest.raises(TypeError, match="LMHead: int8_activations must be a bool, got 1"):
        nn.LMHead(emb, int8_activations=1)
    types = [TensorType(DType.float32, [2, 256]), TensorType(DType.uint8, [5, 144])]
    with (
        Graph("bad", input_types=types) as g,
        pytest.raises(TypeError, match="qmatmul: int8_activations must be a bool, got 'yes'"),
    ):
        ops.qmatmul(Q4K, None, *g.inputs, int8_activations="yes")
