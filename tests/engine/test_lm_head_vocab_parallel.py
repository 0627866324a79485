"""The vocabulary-parallel tied head, `nn.LMHead` over a `VocabParallelEmbedding`, on every
backend: one result per device, and sharded logits, greedy ids and top-k ids and values equal
to the unsharded head's bit for bit (ties made on purpose, across shards too; k above a
shard's rows; empty shards; NaN), log-sum-exp within its documented bound, quantized shards,
the shards read in place natively, and the bytes the devices exchange counted on XLA."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from conftest import assert_same_bits

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.engine.backends.native.plan import build_plan
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType, ops
from ember.quant.samples import sample_table

EPS32 = float(np.finfo(np.float32).eps)
VOCAB, WIDTH = 300, 72
OUTPUTS = ("logits", "argmax", "top_k", "logsumexp")


def devices(n):
    return [DeviceRef.CPU(i) for i in range(n)]


def head_graph(embedding, hidden_shape, hidden_dtype=DType.float32, k=None):
    """One graph: a head per output mode over `embedding`, each result on every device
    (flattened: device by device for a split table)."""
    with Graph("head", input_types=[TensorType(hidden_dtype, ["batch", *hidden_shape])]) as g:
        results = []
        for output in OUTPUTS:
            head = nn.LMHead(embedding, output=output, k=k if output == "top_k" else None)
            result = head(g.inputs[0])
            for per_device in result if isinstance(result, list) else [result]:
                results.extend(per_device if isinstance(per_device, tuple) else [per_device])
        g.output(*results)
    return g


def outputs(session, table, hidden, n=None, k=5, encoding=None):
    """The five outputs (logits, ids, top-k values, top-k ids, logsumexp) of the unsharded
    head (`n` None) or, for each of `n` devices, of the head split over them."""
    dtype = DType.uint8 if encoding else DType.from_numpy(table.dtype)
    if n is None:
        emb = nn.EmbeddingV2(*table.shape, dtype, quantization_encoding=encoding, name="t")
    else:
        emb = nn.VocabParallelEmbedding(*table.shape, dtype, devices(n), encoding, name="t")
    g = head_graph(emb, hidden.shape[1:], DType.from_numpy(hidden.dtype), k)
    results = [r.to_numpy() for r in session.load(g, {"t": table}).execute(hidden)]
    if n is None:
        return results
    per_mode = [1, 1, 2, 1]  # results per device of each mode, in OUTPUTS' order
    by_device, at = [[] for _ in range(n)], 0
    for count in per_mode:
        for d in range(n):
            by_device[d].extend(results[at : at + count])
            at += count
    return by_device


def tied_inputs(seed=2):
    """Small integers: every product and sum exact, so logits tie exactly and often; rows
    equal to row 7 further on (ties across shards); one hidden row all zeros (every logit
    ties) and one with a NaN."""
    rng = np.random.default_rng(seed)
    table = rng.integers(-2, 3, size=(VOCAB, WIDTH)).astype(np.float32)
    table[[100, 101, 150, 299]] = table[7]
    hidden = rng.integers(-1, 2, size=(12, WIDTH)).astype(np.float32)
    hidden[3] = 0.0
    hidden[5, 4] = np.nan
    return table, hidden


def assert_equal_to_unsharded(sharded, unsharded, lse_bound):
    logits, ids, values, top, lse = unsharded
    for got in sharded:
        assert_same_bits(got[0], logits)
        np.testing.assert_array_equal(got[1], ids)
        assert_same_bits(got[2], values)
        np.testing.assert_array_equal(got[3], top)
        nan = np.isnan(lse)
        np.testing.assert_array_equal(np.isnan(got[4]), nan)
        assert np.all(np.abs(got[4] - lse)[~nan] <= lse_bound(lse)[~nan])
    for got in sharded[1:]:  # every device the same bits
        for a, b in zip(got, sharded[0], strict=True):
            assert_same_bits(a, b)


def documented_bound(vocab):
    """`ops.sharded_logsumexp`'s bound on its distance from `logsumexp`."""
    return lambda lse: EPS32 * (2 * vocab + 8 + 2 * np.abs(lse))


@pytest.mark.parametrize(
    ("n", "k"), [(1, 5), (2, 5), (3, 40), (4, 76), (8, 40), (8, VOCAB), (3, 1)]
)
def test_sharded_heads_equal_the_unsharded_head_with_ties(session, n, k):
    """k=40 and 76 on 8 and 4 devices exceed or fill a shard's 38 or 75 rows; k=VOCAB ranks
    the whole vocabulary."""
    table, hidden = tied_inputs()
    unsharded = outputs(session, table, hidden, k=k)
    logits, ids, _, top, _ = unsharded
    np.testing.assert_array_equal(ids, np.argmax(logits, axis=-1))  # numpy: first of equals
    order = np.argsort(-logits, axis=-1, kind="stable")[:, :k]
    nan_row = np.isnan(logits).any(axis=-1)
    np.testing.assert_array_equal(top[~nan_row], order[~nan_row])
    assert ids[3] == 0 and top[3].tolist() == list(range(k))  # all tie: the lowest ids
    assert ids[5] == 0 and top[5].tolist() == list(range(k))  # NaN ranks first, by id
    sharded = outputs(session, table, hidden, n, k=k)
    assert_equal_to_unsharded(sharded, unsharded, documented_bound(VOCAB))


@pytest.mark.parametrize("table_dtype", [np.float32, ml_dtypes.bfloat16, np.float16], ids=str)
@pytest.mark.parametrize(
    ("vocab", "n", "tokens"), [(1001, 2, 3), (1001, 3, 1), (1001, 7, 3), (2100, 2, 2), (2100, 3, 1)]
)
def test_real_valued_logits_equal_bit_for_bit(session, table_dtype, vocab, n, tokens):
    """Shards shorter and longer than the XLA product's blocks, one token and several."""
    rng = np.random.default_rng(n)
    table = rng.standard_normal((vocab, 136)).astype(table_dtype)
    hidden = (rng.standard_normal((2, tokens, 136)) * 3).astype(ml_dtypes.bfloat16)
    unsharded = outputs(session, table, hidden, k=9)
    assert_equal_to_unsharded(
        outputs(session, table, hidden, n, k=9), unsharded, documented_bound(vocab)
    )


def test_more_devices_than_rows(session):
    """Five rows on eight devices: three hold none, and k is the whole vocabulary."""
    rng = np.random.default_rng(9)
    table = rng.integers(-1, 2, size=(5, 8)).astype(np.float32)
    hidden = rng.integers(-1, 2, size=(4, 8)).astype(np.float32)
    unsharded = outputs(session, table, hidden, k=5)
    assert_equal_to_unsharded(
        outputs(session, table, hidden, 8, k=5), unsharded, documented_bound(5)
    )


@pytest.mark.parametrize("name", ["q4_k", "q8_0", "rowwise_int8", "rowwise_int4"])
@pytest.mark.parametrize(("vocab", "n", "tokens"), [(600, 3, 5), (1300, 2, 4), (600, 2, 1)])
def test_quantized_shards_equal_the_unsharded_quantized_head(session, name, vocab, n, tokens):
    encoding = QuantizationEncoding[name.upper()]
    table = sample_table(name, vocab, 256, seed=5)
    hidden = np.random.default_rng(6).standard_normal((tokens, 256)).astype(np.float32)
    unsharded = outputs(session, table, hidden, k=7, encoding=encoding)
    sharded = outputs(session, table, hidden, n, k=7, encoding=encoding)
    assert_equal_to_unsharded(sharded, unsharded, documented_bound(vocab))


def test_nan_logits_of_shards_have_the_unsharded_bits(session):
    """inf - inf in a rowwise int8 table's products: XLA's fused code once gave the NaN a sign
    from either operand, differently for the rows a shard holds."""
    table = sample_table("rowwise_int8", 1100, 10, seed=15)
    hidden = np.array([[np.nan] + [np.inf, -np.inf] * 4 + [np.inf]], np.float32)
    encoding = QuantizationEncoding.ROWWISE_INT8
    unsharded = outputs(session, table, hidden, encoding=encoding)
    for logits, ids in [
        shard[:2] for shard in outputs(session, table, hidden, 3, encoding=encoding)
    ]:
        assert_same_bits(logits, unsharded[0])
        assert_same_bits(ids, unsharded[1])


def test_logsumexp_of_large_logits_within_the_bound(session):
    rng = np.random.default_rng(10)
    table = rng.standard_normal((VOCAB, WIDTH)).astype(np.float32)
    hidden = (rng.standard_normal((6, WIDTH)) * 8).astype(np.float32)
    hidden[0] = 0.0  # every logit 0: log(VOCAB) exactly, up to rounding
    hidden[1, :] = np.inf  # inf and -inf logits: NaN in both
    [*_, lse] = outputs(session, table, hidden, k=1)
    for got in outputs(session, table, hidden, 4, k=1):
        sharded = got[4]
        np.testing.assert_array_equal(np.isnan(sharded), np.isnan(lse))
        fine = ~np.isnan(lse)
        assert np.all(np.abs(sharded - lse)[fine] <= documented_bound(VOCAB)(lse)[fine])
        assert abs(sharded[0] - math.log(VOCAB)) <= 4 * EPS32 * math.log(VOCAB)  # exp(0): 1
    assert abs(lse[0] - math.log(VOCAB)) <= 4 * EPS32 * math.log(VOCAB)


def test_logsumexp_with_a_shard_of_only_minus_infinity_beside_tiny_logits(session):
    """A shard whose logits are all -inf adds nothing, even when the largest logit is below
    float32's `log` of its smallest normal (rescaling that shard by `exp(0 - M)` overflowed to
    inf, times its sum of 0: NaN)."""
    table = np.zeros((4, 2), np.float32)
    table[:2, 0], table[2:, 0] = -np.inf, -100.0  # device 0's rows, then device 1's
    hidden = np.array([[1.0, 0.0], [0.5, 0.0]], np.float32)
    want = np.array([-100 + math.log(2), -50 + math.log(2)])
    [*_, lse] = outputs(session, table, hidden, k=1)
    np.testing.assert_allclose(lse.ravel(), want, rtol=4 * EPS32)
    for got in outputs(session, table, hidden, 2, k=1):
        np.testing.assert_allclose(got[4].ravel(), want, rtol=4 * EPS32)


def test_one_tokens_states_on_every_device_decode_without_a_token_axis(session):
    """A rank-0 id's lookup gives one `(hidden,)` vector per device; the head takes that list
    as it takes one such vector: results without a token axis."""
    table, _ = tied_inputs(seed=12)
    emb = nn.VocabParallelEmbedding(VOCAB, WIDTH, DType.float32, devices(3), name="t")
    with Graph("tied", input_types=[TensorType(DType.int64, [])]) as g:
        states = emb(g.inputs[0])
        ids = nn.LMHead(emb, output="argmax")(states)
        pairs = nn.LMHead(emb, output="top_k", k=3)(states)
        lse = nn.LMHead(emb, output="logsumexp")(states)
        assert [v.shape for v in ids] == [[]] * 3 and pairs[0][1].shape == [3]
        g.output(*ids, *(v for pair in pairs for v in pair), *lse)
    got = [r.to_numpy() for r in session.load(g, {"t": table}).execute(np.int64(150))]
    logits = table.astype(np.float64) @ table[150].astype(np.float64)
    top = np.argsort(-logits, kind="stable")[:3]
    want_lse = np.log(np.exp(logits - logits.max()).sum()) + logits.max()
    for device in range(3):
        assert got[device] == top[0]
        values, top_ids = got[3 + 2 * device], got[4 + 2 * device]
        assert top_ids.tolist() == top.tolist() and values.tolist() == logits[top].tolist()
        assert abs(got[9 + device] - want_lse) <= documented_bound(VOCAB)(want_lse)


def test_a_tied_model_looks_up_and_decodes_on_every_device(session):
    """The lookup's per-device results are the head's per-device hidden states; one weight."""
    table, _ = tied_inputs(seed=11)
    emb = nn.VocabParallelEmbedding(VOCAB, WIDTH, DType.float32, devices(3), name="t")
    with Graph("tied", input_types=[TensorType(DType.int64, ["n"])]) as g:
        results = nn.LMHead(emb, output="top_k", k=4)(emb(g.inputs[0]))
        g.output(*(value for pair in results for value in pair))
    ids = np.array([3, 150, 7, 299], np.int64)
    got = [r.to_numpy() for r in session.load(g, {"t": table}).execute(ids)]
    logits = table[ids] @ table.T
    order = np.argsort(-logits, axis=-1, kind="stable")[:, :4]
    for d in range(3):
        assert_same_bits(got[2 * d], np.take_along_axis(logits, order, -1))
        np.testing.assert_array_equal(got[2 * d + 1], order)


def test_one_result_per_device(session):
    table, hidden = tied_inputs()
    emb = nn.VocabParallelEmbedding(VOCAB, WIDTH, DType.float32, devices(3), name="t")
    with Graph("g", input_types=[TensorType(DType.float32, ["batch", WIDTH])]) as g:
        greedy = nn.LMHead(emb, output="argmax")(g.inputs[0])
        g.output(*greedy)
    assert [v.device for v in greedy] == devices(3)
    results = session.load(g, {"t": table}).execute(hidden)
    assert [r.device.id for r in results] == [0, 1, 2]


def test_native_shards_are_views_of_the_bound_table():
    """Each device's logits read its own rows of the one weight in place: nothing
    table-sized is made at load."""
    table, _ = tied_inputs()
    emb = nn.VocabParallelEmbedding(VOCAB, WIDTH, DType.float32, devices(4), name="t")
    with Graph("g", input_types=[TensorType(DType.float32, ["batch", WIDTH])]) as g:
        g.output(*nn.LMHead(emb, output="argmax")(g.inputs[0]))
    plan = build_plan(g, {"t": table})
    assert plan.preset and all(np.shares_memory(a, table) for a in plan.preset.values())


@pytest.mark.parametrize(("n", "k"), [(2, 5), (4, 8), (8, 1)])
def test_xla_exchanges_candidates_not_logits(n, k):
    """Bytes the devices received, as the lookup's exchange counts them: k candidates of 8
    bytes per token and device for top-k, one for greedy ids, one (max, sum) pair for the
    log-sum-exp, against every device's vocab / n float32 logits for the all-gather."""
    pytest.importorskip("jax")
    session = InferenceSession(backend="xla")
    vocab, width, tokens = 4096, 64, 3
    table = np.random.default_rng(12).standard_normal((vocab, width)).astype(np.float32)
    hidden = np.random.default_rng(13).standard_normal((tokens, width)).astype(np.float32)
    emb = nn.VocabParallelEmbedding(vocab, width, DType.float32, devices(n), name="t")
    received = {}
    for output in OUTPUTS:
        head = nn.LMHead(emb, output=output, k=k if output == "top_k" else None)
        with Graph(output, input_types=[TensorType(DType.float32, ["batch", width])]) as g:
            results = head(g.inputs[0])
            g.output(*(r for result in results for r in np.atleast_1d(result)))
        model = session.load(g, {"t": table})
        model.execute(hidden)
        [exchange] = model._executable._memo.values()
        before = exchange.exchanged_bytes
        model.execute(hidden)
        received[output] = exchange.exchanged_bytes - before
    per_device_and_token = n * (n - 1) * tokens  # each device receives from n - 1 others
    assert received["top_k"] == per_device_and_token * k * 8
    assert received["argmax"] == received["logsumexp"] == per_device_and_token * 8
    assert received["logits"] == per_device_and_token * (vocab // n) * 4
    assert received["top_k"] / received["logits"] == (k * 8) / (vocab // n * 4)


def test_bad_vocab_parallel_heads_are_clear_errors():
    emb = nn.VocabParallelEmbedding(VOCAB, WIDTH, DType.float32, devices(3), name="t")
    with pytest.raises(ValueError, match=rf"k must be in \[1, {VOCAB}\], got {VOCAB + 1}"):
        nn.LMHead(emb, output="top_k", k=VOCAB + 1)
    head = nn.LMHead(emb, output="argmax")
    types = [TensorType(DType.float32, ["b", WIDTH], d) for d in devices(2)]
    with (
        Graph("bad", input_types=types) as g,
        pytest.raises(ValueError, match="2 hidden states for a table split over 3 devices"),
    ):
        head(list(g.inputs))
    with (
        Graph("bad", input_types=[TensorType(DType.float32, ["b", WIDTH + 1])]) as g,
        pytest.raises(ValueError, match=rf"width {WIDTH + 1} do not match"),
    ):
        head(g.inputs[0])


@pytest.mark.parametrize(
    ("dtype", "batch", "message"),
    [
        (DType.bfloat16, "b", "must be the same states, replicated"),
        (DType.float32, "c", r"float32\[Dim\('b'\), Dim\(72\)\] and"),
    ],
)
def test_per_device_hidden_states_that_cannot_be_replicas_are_refused(dtype, batch, message):
    emb = nn.VocabParallelEmbedding(VOCAB, WIDTH, DType.float32, devices(2), name="t")
    types = [
        TensorType(DType.float32, ["b", WIDTH], DeviceRef.CPU(0)),
        TensorType(dtype, [batch, WIDTH], DeviceRef.CPU(1)),
    ]
    with Graph("bad", input_types=types) as g, pytest.raises(ValueError, match=message):
        nn.LMHead(emb, output="argmax")(list(g.inputs))


def test_a_head_refuses_the_token_slices_of_a_scattering_lookup(session):
    """`reduce="scatter"` leaves each device other tokens: fed to the head (as they are, or
    after per-device ops) they would merge different tokens' candidates, so they are refused;
    gathered again, or given as one value, they are the head's usual replicas."""
    table = np.random.default_rng(5).standard_normal((VOCAB, WIDTH)).astype(np.float32)
    emb = nn.VocabParallelEmbedding(VOCAB, WIDTH, DType.float32, devices(2), reduce="scatter")
    head = nn.LMHead(emb, output="argmax")
    tokens = np.array([5, 100, 7, 299])
    with Graph("scatter", input_types=[TensorType(DType.int64, [4])]) as g:
        slices = emb(g.inputs[0])  # device k: tokens 2k, 2k + 1
        for given in (slices, [s * 2 for s in slices]):
            with pytest.raises(ValueError, match='come from a reduce="scatter" lookup'):
                head(given)
        gathered = ops.allgather(slices, axis=0)
        g.output(*head(gathered), *head(ops.constant(table[tokens], DType.float32)))
    results = session.load(g, {"weight": table}).execute(tokens)
    want = np.argmax(table[tokens] @ table.T, axis=1)
    for result in results:
        np.testing.assert_array_equal(result.to_numpy(), want)


def test_a_list_of_hidden_states_for_a_head_on_one_device_is_refused():
    head = nn.LMHead(nn.EmbeddingV2(VOCAB, WIDTH, DType.float32, name="t"))
    with (
        Graph("bad", input_types=[TensorType(DType.float32, ["b", WIDTH])]) as g,
        pytest.raises(ValueError, match="table is on one device: give one value, not a"),
    ):
        head([g.inputs[0]])


def test_a_quantized_tables_width_is_said_in_values_not_bytes():
    emb = nn.EmbeddingV2(VOCAB, 34 * 3, DType.uint8, None, QuantizationEncoding.Q8_0, name="t")
    with (
        Graph("bad", input_types=[TensorType(DType.float32, ["b", 97])]) as g,
        pytest.raises(ValueError, match=r"\(300 rows of 96 values, Q8_0\): expected width 96"),
    ):
        nn.LMHead(emb)(g.inputs[0])


def test_the_ops_type_rules():
    types = [TensorType(DType.float32, ["b", 10], d) for d in devices(2)]
    with Graph("ops", input_types=types) as g:
        with pytest.raises(ValueError, match=r"k must be in \[1, 20\], got 21"):
            ops.sharded_top_k(g.inputs, 21)
        with pytest.raises(TypeError, match="k must be an int"):
            ops.sharded_top_k(g.inputs, 2.0)
        with pytest.raises(ValueError, match="each shard must be on its own device"):
            ops.sharded_logsumexp([g.inputs[0], g.inputs[0]])
        with pytest.raises(TypeError, match="shards must be one of"):
            ops.sharded_top_k([g.inputs[0].cast(DType.int32)], 1)
        with pytest.raises(ValueError, match="needs at least one"):
            ops.allgather([])
        [(values, ids), _] = ops.sharded_top_k(g.inputs, 20)
        assert values.dtype == DType.float32 and ids.dtype == DType.int64
        gathered = ops.allgather(g.inputs, axis=1)
        assert [int(d) for d in gathered[1].shape[1:]] == [20]
    lopsided = [TensorType(DType.float32, ["b", 10], devices(1)[0])]
    lopsided.append(TensorType(DType.float32, ["c", 10], devices(2)[1]))
    with Graph("ops", input_types=lopsided) as g:
        with pytest.raises(ValueError, match="leading axes differ"):
            ops.sharded_top_k(g.inputs, 1)
        with pytest.raises(ValueError, match="shapes differ off axis 1"):
            ops.allgather(g.inputs, axis=1)


def test_allgather_concatenates_along_any_axis(session):
    """Inputs of different sizes along the axis, in device order, whole on every device."""
    parts = [np.arange(12, dtype=np.float32).reshape(3, 4) + 100 * d for d in range(3)]
    parts[1] = parts[1][:1]  # one row
    types = [
        TensorType(DType.float32, list(p.shape), d) for p, d in zip(parts, devices(3), strict=True)
    ]
    with Graph("allgather", input_types=types) as g:
        g.output(*ops.allgather(g.inputs, axis=0))
    results = session.load(g, {}).execute(*parts)
    assert [r.device.id for r in results] == [0, 1, 2]
    for result in results:
        assert_same_bits(result.to_numpy(), np.concat(parts, axis=0))


def test_allreduce_sum_of_graph_inputs(session):
    """Inputs that go straight into the all-reduce, as they come from the caller (host arrays),
    are summed on every device."""
    parts = [np.arange(6, dtype=np.float32).reshape(2, 3) * (d + 1) for d in range(3)]
    types = [TensorType(DType.float32, [2, 3], d) for d in devices(3)]
    with Graph("allreduce", input_types=types) as g:
        g.output(*ops.allreduce.sum(g.inputs))
    results = session.load(g, {}).execute(*parts)
    assert [r.device.id for r in results] == [0, 1, 2]
    for result in results:
        assert_same_bits(result.to_numpy(), parts[0] + parts[1] + parts[2])
