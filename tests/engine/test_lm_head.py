"""The tied LM head, `nn.LMHead`, on every backend: logits against a float64 reference within
the float32 dot-product bound, greedy ids and top-k exact against numpy on the same logits
(ties made on purpose), log-sum-exp against float64, one shared weight, and clear errors."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from conftest import assert_within_dot_bound

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.engine.backends.native.plan import build_plan
from ember.graph import Graph, TensorType, Weight
from ember.graph.ops.constant import WEIGHT

EPS32 = float(np.finfo(np.float32).eps)
VOCAB, WIDTH = 300, 72
NUMPY = {DType.float32: np.float32, DType.bfloat16: ml_dtypes.bfloat16, DType.float16: np.float16}


def head_outputs(session, table, hidden, outputs, k=None, name="tokens"):
    """One graph with a head per output mode over one `EmbeddingV2`, executed on `hidden`."""
    emb = nn.EmbeddingV2(*table.shape, DType.from_numpy(table.dtype), name=name)
    shape = ["batch", *hidden.shape[1:]]
    with Graph("head", input_types=[TensorType(DType.from_numpy(hidden.dtype), shape)]) as g:
        results = []
        for output in outputs:
            head = nn.LMHead(emb, output=output, k=k if output == "top_k" else None)
            result = head(g.inputs[0])
            results.extend(result if isinstance(result, tuple) else [result])
        g.output(*results)
    return [r.to_numpy() for r in session.load(g, {name: table}).execute(hidden)]


@pytest.mark.parametrize("table_dtype", list(NUMPY), ids=str)
@pytest.mark.parametrize("hidden_dtype", list(NUMPY), ids=str)
def test_logits_match_float64_within_the_dot_bound(session, table_dtype, hidden_dtype):
    rng = np.random.default_rng(0)
    table = rng.standard_normal((VOCAB, WIDTH)).astype(NUMPY[table_dtype])
    hidden = rng.standard_normal((5, WIDTH)).astype(NUMPY[hidden_dtype])
    [logits] = head_outputs(session, table, hidden, ["logits"])
    assert_within_dot_bound(logits, hidden, table)


def test_hidden_with_a_sequence_axis(session):
    rng = np.random.default_rng(1)
    table = rng.standard_normal((VOCAB, WIDTH)).astype(ml_dtypes.bfloat16)
    hidden = rng.standard_normal((2, 3, WIDTH)).astype(np.float32)
    logits, ids, values, top, lse = head_outputs(
        session, table, hidden, ["logits", "argmax", "top_k", "logsumexp"], k=4
    )
    assert logits.shape == (2, 3, VOCAB) and ids.shape == (2, 3) and lse.shape == (2, 3)
    assert values.shape == top.shape == (2, 3, 4)
    assert_within_dot_bound(logits.reshape(6, VOCAB), hidden.reshape(6, WIDTH), table)
    np.testing.assert_array_equal(ids, np.argmax(logits, axis=-1))


@pytest.mark.parametrize("devices", [None, 2], ids=["one device", "two devices"])
@pytest.mark.parametrize("encoding", [None, "q8_0"])
def test_one_tokens_states_give_the_one_token_batchs_outputs(session, encoding, devices):
    """A `(hidden)` query, as Flax's `attend` takes one: each output without the batch axis,
    the bits of the same token in a batch of one."""
    from ember.graph import DeviceRef, QuantizationEncoding
    from ember.quant import FORMATS

    rng = np.random.default_rng(4)
    table = rng.standard_normal((VOCAB, 64)).astype(np.float32)
    options = {"name": "t"}
    if encoding is not None:
        table = FORMATS[encoding].quantize(table)
        options["quantization_encoding"] = QuantizationEncoding[encoding.upper()]
    dtype = DType.float32 if encoding is None else DType.uint8
    if devices is None:
        emb = nn.EmbeddingV2(VOCAB, table.shape[1], dtype, **options)
    else:
        places = [DeviceRef.CPU(i) for i in range(devices)]
        emb = nn.VocabParallelEmbedding(VOCAB, table.shape[1], dtype, places, **options)
    types = [TensorType(DType.float32, [64]), TensorType(DType.float32, [1, 64])]
    with Graph("one", input_types=types) as g:
        outputs = []
        for states in g.inputs:
            for output in ("logits", "argmax", "top_k", "logsumexp"):
                result = nn.LMHead(emb, output=output, k=3 if output == "top_k" else None)(states)
                first = result[0] if isinstance(result, list) else result  # device 0's
                outputs.extend(first if isinstance(first, tuple) else [first])
        g.output(*outputs)
    hidden = rng.standard_normal(64).astype(np.float32)
    results = [r.to_numpy() for r in session.load(g, {"t": table}).execute(hidden, hidden[None])]
    alone, batch = results[:5], results[5:]
    assert [a.shape for a in alone] == [(VOCAB,), (), (3,), (3,), ()]
    for a, b in zip(alone, batch, strict=True):
        assert a.tobytes() == b[0].tobytes()


def tied_table(rng):
    """Small integers: every product and sum is exact, so logits tie exactly and often."""
    return rng.integers(-2, 3, size=(VOCAB, WIDTH)).astype(np.float32)


@pytest.mark.parametrize("k", [1, 5, 40, VOCAB])
def test_greedy_and_top_k_are_exact_on_the_same_logits_with_ties(session, k):
    rng = np.random.default_rng(2)
    table = tied_table(rng)
    table[100:110] = table[7]  # ten more rows equal to row 7: equal logits everywhere
    hidden = rng.integers(-1, 2, size=(16, WIDTH)).astype(np.float32)
    hidden[3] = 0.0  # every logit 0: all tie
    logits, ids, values, top = head_outputs(
        session, table, hidden, ["logits", "argmax", "top_k"], k=k
    )
    np.testing.assert_array_equal(logits, hidden @ table.T)  # exact here
    np.testing.assert_array_equal(ids, np.argmax(logits, axis=-1))
    assert ids[3] == 0
    order = np.argsort(-logits, axis=-1, kind="stable")[:, :k]  # lowest id first among equals
    np.testing.assert_array_equal(top, order)
    np.testing.assert_array_equal(values, np.take_along_axis(logits, order, axis=-1))


def test_greedy_and_top_k_on_real_valued_logits(session):
    rng = np.random.default_rng(3)
    table = rng.standard_normal((VOCAB, WIDTH)).astype(np.float16)
    hidden = rng.standard_normal((8, WIDTH)).astype(np.float32)
    logits, ids, values, top = head_outputs(
        session, table, hidden, ["logits", "argmax", "top_k"], k=10
    )
    np.testing.assert_array_equal(ids, np.argmax(logits, axis=-1))
    order = np.argsort(-logits, axis=-1, kind="stable")[:, :10]
    np.testing.assert_array_equal(top, order)
    np.testing.assert_array_equal(values, np.take_along_axis(logits, order, axis=-1))


def test_logsumexp_matches_float64(session):
    rng = np.random.default_rng(4)
    table = rng.standard_normal((VOCAB, WIDTH)).astype(np.float32)
    hidden = (rng.standard_normal((6, WIDTH)) * 4).astype(np.float32)
    [lse] = head_outputs(session, table, hidden, ["logsumexp"])
    exact = hidden.astype(np.float64) @ table.astype(np.float64).T
    peak = exact.max(axis=-1)
    expected = peak + np.log(np.exp(exact - peak[:, None]).sum(axis=-1))
    assert lse.dtype == np.float32 and lse.shape == (6,)
    # the logits' own error (the dot bound) moves the result by at most their largest error
    bound = WIDTH * EPS32 * (np.abs(hidden) @ np.abs(table).T).max(axis=-1)
    assert np.all(np.abs(lse - expected) <= bound + 4 * EPS32 * np.abs(expected))


def test_nan_hidden_states_never_raise(session):
    rng = np.random.default_rng(5)
    table = rng.standard_normal((VOCAB, WIDTH)).astype(np.float32)
    hidden = rng.standard_normal((3, WIDTH)).astype(np.float32)
    hidden[1, 5] = np.nan
    logits, ids, values, top, lse = head_outputs(
        session, table, hidden, ["logits", "argmax", "top_k", "logsumexp"], k=3
    )
    assert np.isnan(logits[1]).all() and np.isfinite(logits[[0, 2]]).all()
    assert ids[1] == 0 and top[1].tolist() == [0, 1, 2] and np.isnan(values[1]).all()
    assert np.isnan(lse[1]) and np.isfinite(lse[[0, 2]]).all()
    np.testing.assert_array_equal(ids[[0, 2]], np.argmax(logits[[0, 2]], axis=-1))


def test_attend_is_the_head(session):
    rng = np.random.default_rng(6)
    table = rng.standard_normal((VOCAB, WIDTH)).astype(np.float32)
    hidden = rng.standard_normal((2, WIDTH)).astype(np.float32)
    emb = nn.EmbeddingV2(VOCAB, WIDTH, DType.float32, name="tokens")
    with Graph("attend", input_types=[TensorType(DType.float32, ["batch", WIDTH])]) as g:
        g.output(emb.attend(g.inputs[0]), nn.LMHead(emb)(g.inputs[0]))
    attended, logits = session.load(g, {"tokens": table}).execute(hidden)
    np.testing.assert_array_equal(attended.to_numpy(), logits.to_numpy())


class TiedModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.EmbeddingV2(VOCAB, WIDTH, DType.bfloat16, name="token_embd.weight")
        self.head = nn.LMHead(self.embed, output="argmax")


def test_lookup_and_head_share_one_weight(session):
    """One registry entry, one weight node, one array bound: the head reads the lookup's."""
    model = TiedModel()
    assert list(model.raw_state_dict()) == ["embed.token_embd.weight"]  # its full name
    table = np.random.default_rng(7).standard_normal((VOCAB, WIDTH)).astype(ml_dtypes.bfloat16)
    model.load_state_dict({"embed.token_embd.weight": table})
    with Graph("tied", input_types=[TensorType(DType.int64, ["n"])]) as g:
        vectors = model.embed(g.inputs[0])
        g.output(model.head(vectors))
    assert sum(node.op is WEIGHT for node in g.live_nodes()) == 1
    ids = np.array([3, 250, 7], np.int64)
    [greedy] = session.load(g, model.state_dict()).execute(ids)
    logits = table[ids].astype(np.float64) @ table.astype(np.float64).T
    np.testing.assert_array_equal(greedy.to_numpy(), np.argmax(logits, axis=-1))


def test_the_native_head_reads_the_bound_table_in_place():
    """Nothing table-sized is made at load: the transposed table is a view of the bound one."""
    model = TiedModel()
    table = np.zeros((VOCAB, WIDTH), ml_dtypes.bfloat16)
    with Graph("tied", input_types=[TensorType(DType.float32, ["n", WIDTH])]) as g:
        g.output(model.head(g.inputs[0]))
    plan = build_plan(g, {"token_embd.weight": table})
    assert plan.preset and all(np.shares_memory(a, table) for a in plan.preset.values())


def test_embedding_over_a_table_value(session):
    table = np.random.default_rng(8).standard_normal((VOCAB, WIDTH)).astype(np.float32)
    hidden = np.random.default_rng(9).standard_normal((2, WIDTH)).astype(np.float32)
    with Graph("untied", input_types=[TensorType(DType.float32, ["batch", WIDTH])]) as g:
        g.output(
            nn.LMHead(nn.Embedding(Weight("output", DType.float32, [VOCAB, WIDTH])))(g.inputs[0])
        )
    [logits] = session.load(g, {"output": table}).execute(hidden)
    assert_within_dot_bound(logits.to_numpy(), hidden, table)


def test_bad_heads_are_clear_errors_at_build_time():
    emb = nn.EmbeddingV2(VOCAB, WIDTH, DType.float32, name="t")
    with pytest.raises(ValueError, match=r"output must be one of .*got 'probs'"):
        nn.LMHead(emb, output="probs")
    for k in (0, VOCAB + 1, -3):
        with pytest.raises(ValueError, match=rf"k must be in \[1, {VOCAB}\], got {k}"):
            nn.LMHead(emb, output="top_k", k=k)
    with pytest.raises(ValueError, match=r'output="top_k" needs an int k, got None'):
        nn.LMHead(emb, output="top_k")
    with pytest.raises(ValueError, match="k is for output=\"top_k\", not 'argmax'"):
        nn.LMHead(emb, output="argmax", k=3)
    with pytest.raises(TypeError, match="takes an EmbeddingV2, Embedding or VocabParallel") as info:
        nn.LMHead(np.zeros((3000, 64), np.float32))
    assert str(info.value).endswith("got a ndarray of shape (3000, 64), float32")  # no repr
    assert "LMHead(Embedding(table))" in str(info.value)  # what to write instead, which works
    table = np.eye(4, dtype=np.float32)
    with Graph("array", input_types=[TensorType(DType.float32, ["n", 4])]) as g:
        g.output(nn.LMHead(nn.Embedding(table), output="argmax")(g.inputs[0]))
    hidden = np.array([[0, 0, 1, 0], [1, 0, 0, 0]], np.float32)
    np.testing.assert_array_equal(InferenceSession().load(g).execute(hidden)[0].to_numpy(), [2, 0])


@pytest.mark.parametrize(
    ("dtype", "shape", "error", "message"),
    [
        (DType.float32, [2, WIDTH + 1], ValueError, rf"width {WIDTH + 1} do not match.*{WIDTH}"),
        (
            DType.int32,
            [2, WIDTH],
            TypeError,
            "must be one of float32, bfloat16, float16, got int32",
        ),
        (DType.float64, [2, WIDTH], TypeError, "got float64"),
        (DType.float32, [1, 2, 3, WIDTH], ValueError, r"\(hidden\), \(batch, hidden\) or"),
    ],
)
def test_bad_hidden_states_are_clear_errors_at_build_time(dtype, shape, error, message):
    head = nn.LMHead(nn.EmbeddingV2(VOCAB, WIDTH, DType.float32, name="t"))
    with (
        Graph("bad", input_types=[TensorType(dtype, shape)]) as g,
        pytest.raises(error, match=message),
    ):
        head(g.inputs[0])


def test_k_beyond_a_table_values_vocabulary_is_an_error_at_build_time():
    head = nn.LMHead(nn.Embedding(Weight("t", DType.float32, [10, WIDTH])), output="top_k", k=11)
    bad_k = pytest.raises(ValueError, match=r"k must be in \[1, 10\], got 11")
    with Graph("bad", input_types=[TensorType(DType.float32, [2, WIDTH])]) as g, bad_k:
        head(g.inputs[0])
