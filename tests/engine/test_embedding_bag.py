"""`nn.EmbeddingBag` / `ops.embedding_bag` on both backends, against a numpy float64 reference
(always) and PyTorch's `F.embedding_bag` (where torch is installed).

Sum and mean are within `n * 2**-24 * sum |x_i|` of the float64 pooled value (float32
accumulation of `n` terms, plus the final rounding for bfloat16/float16 tables); max is exact.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.engine.backends.native.kernels.bag import (
    KIND_F32,
    POOLS,
    numpy_pool_bags,
)
from ember.errors import OutOfRangeError
from ember.graph import Graph, QuantizationEncoding, TensorType, Weight, ops
from ember.quant import FORMATS

VOCAB, HIDDEN = 50, 16
ID_DTYPES = [DType.int8, DType.uint8, DType.int16, DType.uint16, DType.int32, DType.uint32,
             DType.int64, DType.uint64]  # fmt: skip
EPS32 = 2.0**-24


def reference(table, ids, offsets, weights, mode, include_last=False, padding_idx=None,
              out_of_range="error"):  # fmt: skip
    """float64 pooling, written from torch's documented semantics: (values, bound)."""
    table = np.asarray(table, np.float64)
    ids = np.asarray(ids)
    if ids.ndim == 2:
        bounds = [(i * ids.shape[1], (i + 1) * ids.shape[1]) for i in range(ids.shape[0])]
        ids = ids.reshape(-1)
        weights = None if weights is None else np.asarray(weights).reshape(-1)
    else:
        ends = list(offsets[1:]) + ([] if include_last else [len(ids)])
        bounds = list(zip(offsets[: len(ends)], ends, strict=True))
    out = np.zeros((len(bounds), table.shape[1]))
    bound = np.zeros_like(out)
    vocab = table.shape[0]
    for b, (start, end) in enumerate(bounds):
        rows = []
        for j in range(start, end):
            i = int(ids[j])
            if padding_idx is not None and i == padding_idx % vocab:
                continue
            if not 0 <= i < vocab:
                row = np.zeros(table.shape[1]) if out_of_range == "zero" else table[
                    min(max(i, 0), vocab - 1)]  # fmt: skip
            else:
                row = table[i]
            w = 1.0 if weights is None else float(weights[j])
            rows.append(w * row)
        if not rows:
            continue
        rows = np.array(rows)
        if mode == "max":
            out[b] = rows.max(axis=0)
        else:
            out[b] = rows.sum(axis=0) / (len(rows) if mode == "mean" else 1)
            n = len(rows)
            bound[b] = n * EPS32 * np.abs(rows).sum(axis=0) / (n if mode == "mean" else 1)
    return out, bound


def assert_close(got, want, bound, rounding=0.0):
    got = np.asarray(got, np.float64)
    slack = bound + rounding * np.abs(want) + 1e-30
    assert got.shape == want.shape
    excess = np.abs(got - want) - slack
    assert (excess <= 0).all(), f"off by {np.abs(got - want).max()} (bound {slack.max()})"


def build(bag, ids_type, with_offsets=True, weights_type=None):
    types = [ids_type]
    if with_offsets:
        types.append(TensorType(DType.int64, ["bags"]))
    if weights_type is not None:
        types.append(weights_type)
    with Graph("bags", input_types=types) as g:
        offsets = g.inputs[1] if with_offsets else None
        weights = g.inputs[-1] if weights_type is not None else None
        g.output(bag(g.inputs[0], offsets, weights))
    return g


def table_of(dtype=np.float32, vocab=VOCAB, hidden=HIDDEN, seed=0):
    values = np.random.default_rng(seed).standard_normal((vocab, hidden)).astype(np.float32)
    return values.astype(dtype)


def run(session, table, ids, offsets=None, weights=None, dtype=DType.float32, **options):
    bag = nn.EmbeddingBag(table.shape[0], table.shape[1], dtype, name="t", **options)
    ids_type = TensorType(DType.from_numpy(ids.dtype), ["n"] if ids.ndim == 1 else ["b", "l"])
    weights_type = None if weights is None else TensorType(DType.float32, list(ids_type.shape))
    g = build(bag, ids_type, offsets is not None, weights_type)
    model = session.load(g, {"t": table})
    args = [ids] + ([offsets] if offsets is not None else []) + (
        [weights] if weights is not None else [])  # fmt: skip
    return model.execute(*args)[0].to_numpy()


IDS = np.array([3, 7, 7, 0, 49, 12, 3, 3, 3, 8, 21, 7])
OFFSETS = np.array([0, 3, 3, 8, 8, 11])  # with an empty bag, and repeated ids in bags


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("include_last", [False, True])
@pytest.mark.parametrize("padding_idx", [None, 3, -1])
def test_modes_match_the_reference(session, mode, include_last, padding_idx):
    table = table_of()
    want, bound = reference(table, IDS, OFFSETS, None, mode, include_last, padding_idx)
    got = run(session, table, IDS, OFFSETS, mode=mode, include_last_offset=include_last,
              padding_idx=padding_idx)  # fmt: skip
    assert got.dtype == np.float32
    if mode == "max":
        np.testing.assert_array_equal(got, want.astype(np.float32))
    else:
        assert_close(got, want, bound)


@pytest.mark.parametrize("id_dtype", ID_DTYPES, ids=str)
def test_every_id_dtype(session, id_dtype):
    table = table_of()
    ids = IDS.astype(id_dtype.to_numpy())
    want, bound = reference(table, IDS, OFFSETS, None, "sum", padding_idx=7)
    assert_close(run(session, table, ids, OFFSETS, padding_idx=7), want, bound)


def test_per_sample_weights_and_fixed_length_bags(session):
    table = table_of()
    weights = np.random.default_rng(3).standard_normal(IDS.size).astype(np.float32)
    want, bound = reference(table, IDS, OFFSETS, weights, "sum")
    assert_close(run(session, table, IDS, OFFSETS, weights), want, bound)
    square = IDS.reshape(4, 3)
    want, bound = reference(table, square, None, weights.reshape(4, 3), "sum", padding_idx=0)
    got = run(session, table, square, weights=weights.reshape(4, 3), padding_idx=0)
    assert_close(got, want, bound)


def test_empty_bags_are_zeros_in_every_mode(session):
    table = table_of() - 10  # every value negative: a max over nothing must still be 0
    for mode in ("sum", "mean", "max"):
        got = run(session, table, np.array([5, 5], np.int32), np.array([0, 0, 2, 2]), mode=mode)
        np.testing.assert_array_equal(got[[0, 2, 3]], 0)
        np.testing.assert_array_equal(got[1], table[5] * (2 if mode == "sum" else 1))
        padded = run(session, table, np.array([5, 5], np.int32), np.array([0]), mode=mode,
                     padding_idx=5)  # fmt: skip
        np.testing.assert_array_equal(padded, 0)


@pytest.mark.parametrize("out_of_range", ["zero", "clamp"])
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_out_of_range_ids_pool_the_rows_the_lookup_gives(session, out_of_range, mode):
    table = table_of() - 10
    ids = np.array([3, 99, -4, 7, 1000, 2], np.int64)
    offsets = np.array([0, 3, 4])
    want, bound = reference(table, ids, offsets, None, mode, out_of_range=out_of_range)
    got = run(session, table, ids, offsets, mode=mode, out_of_range=out_of_range)
    assert_close(got, want, bound)
    if out_of_range == "zero" and mode == "max":  # a zero row is a candidate 0
        np.testing.assert_array_equal(got[0], 0)


@pytest.mark.parametrize("dtype", [DType.bfloat16, DType.float16])
def test_narrow_tables_accumulate_in_float32_and_round_once(session, dtype):
    np_dtype = dtype.to_numpy()
    table = table_of(np_dtype)
    table[1, 0] = np.float16(6e-8).astype(np_dtype)  # a float16 subnormal
    ids = np.array([1, 4, 9, 9, 1, 30, 2], np.int32)
    offsets = np.array([0, 1, 4])
    for mode in ("sum", "mean", "max"):
        want, bound = reference(table.astype(np.float32), ids, offsets, None, mode)
        got = run(session, table, ids, offsets, dtype=dtype, mode=mode)
        assert got.dtype == np_dtype
        rounding = 2.0**-8 if dtype is DType.bfloat16 else 2.0**-11
        assert_close(got, want, bound, rounding)
        if mode == "max":
            np.testing.assert_array_equal(got, want.astype(np_dtype))


@pytest.mark.parametrize("name", ["q4_0", "q8_0", "q4_k", "q6_k"])
def test_gguf_tables_match_dequantize_then_float64_pooling(session, name):
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    encoding = QuantizationEncoding[name.upper()]
    table = FORMATS[name].quantize(table_of(hidden=256, vocab=40))
    decoded = dequantize(table, GGMLQuantizationType[encoding.value])
    ids = np.random.default_rng(5).integers(0, 40, 300).astype(np.uint16)
    offsets = np.array([0, 10, 10, 150, 299])
    weights = np.random.default_rng(6).standard_normal(300).astype(np.float32)
    for mode in ("sum", "mean", "max"):
        w = weights if mode == "sum" else None
        want, bound = reference(decoded, ids, offsets, w, mode, padding_idx=4)
        bag = nn.EmbeddingBag(40, table.shape[1], DType.uint8, quantization_encoding=encoding,
                              name="q", mode=mode, padding_idx=4)  # fmt: skip
        types = [TensorType(DType.uint16, ["n"]), TensorType(DType.int64, ["b"])]
        if w is not None:
            types.append(TensorType(DType.float32, ["n"]))
        with Graph("q", input_types=types) as g:
            g.output(bag(*g.inputs))
        args = [ids, offsets] + ([w] if w is not None else [])
        got = session.load(g, {"q": table}).execute(*args)[0].to_numpy()
        assert got.dtype == np.float32
        assert_close(got, want, bound)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_no_ids_at_all_in_every_format(session, name):
    """A lookup of no ids, and bags that all are empty (1-D ids with offsets, and 2-D ids of
    no columns), give empty and zero results on every backend."""
    from ember.quant.samples import sample_table

    fmt = FORMATS[name]
    table = sample_table(name, 6, fmt.block_elements * 2)
    width = fmt.block_elements * 2
    encoding = QuantizationEncoding[name.upper()]
    lookup = nn.EmbeddingV2(6, table.shape[1], DType.uint8, quantization_encoding=encoding,
                            name="t")  # fmt: skip
    bag = nn.EmbeddingBag(6, table.shape[1], DType.uint8, quantization_encoding=encoding,
                          name="b")  # fmt: skip
    types = [TensorType(DType.int64, ["n"]), TensorType(DType.int64, ["b"]),
             TensorType(DType.int64, [3, "m"])]  # fmt: skip
    with Graph("empty", input_types=types) as g:
        ids, offsets, fixed = g.inputs
        g.output(lookup(ids), bag(ids, offsets), bag(fixed))
    model = session.load(g, {"t": table, "b": table})
    none = np.zeros(0, np.int64)
    looked_up, bags, fixed_bags = (r.to_numpy() for r in model.execute(
        none, np.zeros(2, np.int64), np.zeros((3, 0), np.int64)))  # fmt: skip
    assert looked_up.shape == (0, width)
    np.testing.assert_array_equal(bags, np.zeros((2, width), np.float32))
    np.testing.assert_array_equal(fixed_bags, np.zeros((3, width), np.float32))


def test_weighted_quantized_bags_short_and_long(session):
    """Weighted quantized bags of every length, one of 48 rows (each row decoded as it is
    pooled)."""
    encoding = QuantizationEncoding.Q8_0
    table = FORMATS["q8_0"].quantize(table_of(hidden=256, vocab=40))
    decoded = FORMATS["q8_0"].dequantize(table)
    ids = np.random.default_rng(7).integers(0, 40, 90)
    offsets = np.array([0, 2, 5, 5, 9, 40, 41, 89])
    weights = np.random.default_rng(8).standard_normal(90).astype(np.float32)
    want, bound = reference(decoded, ids, offsets, weights, "sum")
    got = run(session, table, ids, offsets, weights, dtype=DType.uint8,
              quantization_encoding=encoding)  # fmt: skip
    assert_close(got, want, bound)


@pytest.mark.parametrize(
    ("offsets", "message"),
    [
        ([1, 3], r"offsets\[0\] must be 0 .* got 1"),
        ([0, 3, 2], r"offsets must not decrease, but offsets\[2\] = 2 < offsets\[1\] = 3"),
        ([0, 13], r"offsets\[1\] = 13 is past the 12 ids"),
    ],
)
def test_bad_offsets_raise_and_write_nothing(session, offsets, message):
    bag = nn.EmbeddingBag(VOCAB, HIDDEN, DType.float32, name="t")
    model = session.load(build(bag, TensorType(DType.int64, ["n"])), {"t": table_of()})
    with pytest.raises(ValueError, match=message):
        model.execute(IDS, np.array(offsets))
    with Graph("static"), pytest.raises(ValueError, match=message):  # constant: at build
        bag(ops.constant(IDS, DType.int64), ops.constant(np.array(offsets), DType.int64))


def test_out_of_range_error_names_the_id_and_writes_nothing(session):
    bag = nn.EmbeddingBag(VOCAB, HIDDEN, DType.float32, name="t")
    model = session.load(build(bag, TensorType(DType.int32, ["n"])), {"t": table_of()})
    if session.backend == "native":
        out = np.full((2, HIDDEN), 7.0, np.float32)
        with pytest.raises(OutOfRangeError, match=r"id 50 at position \(3,\).*\[0, 50\)"):
            model.execute(np.array([1, 2, 3, 50], np.int32), np.array([0, 2]), out=[out])
        np.testing.assert_array_equal(out, 7.0)
    with pytest.raises(OutOfRangeError, match=r"id -1 at position \(0,\)"):
        model.execute(np.array([-1, 2], np.int32), np.array([0, 1]))


def test_bad_arguments_are_build_time_errors():
    bag = nn.EmbeddingBag(VOCAB, HIDDEN, DType.float32, name="t", mode="max")
    ids = TensorType(DType.int64, ["n"])
    with Graph("g", input_types=[ids, ids, TensorType(DType.float32, ["n"])]) as g:
        with pytest.raises(ValueError, match="per_sample_weights are only for mode='sum'"):
            bag(g.inputs[0], g.inputs[1], g.inputs[2])
        with pytest.raises(ValueError, match="1-D ids need offsets"):
            bag(g.inputs[0])
        with pytest.raises(TypeError, match="integer dtype"):
            bag(g.inputs[2], g.inputs[1])
        table = Weight("w", DType.float32, [VOCAB, HIDDEN])
        with pytest.raises(ValueError, match=r"per_sample_weights must have the ids' shape"):
            three_ids = ops.constant(np.zeros(3, np.int64), DType.int64)
            four_weights = ops.constant(np.ones(4, np.float32), DType.float32)
            ops.embedding_bag(table, three_ids, g.inputs[1], four_weights)
        with pytest.raises(TypeError, match="cannot be pooled"):
            ops.embedding_bag(Weight("i", DType.int32, [4, 4]), g.inputs[0], g.inputs[1])
    with pytest.raises(ValueError, match=r"padding_idx must be in \[-50, 50\)"):
        nn.EmbeddingBag(VOCAB, HIDDEN, DType.float32, padding_idx=50)
    with pytest.raises(ValueError, match="mode must be one of"):
        nn.EmbeddingBag(VOCAB, HIDDEN, DType.float32, mode="median")
    for dtype in (DType.uint8, DType.int32, DType.float64):  # uint8 only with an encoding
        with pytest.raises(TypeError, match=f"a table of {dtype!r} cannot be pooled; it must"):
            nn.EmbeddingBag(VOCAB, HIDDEN, dtype)


def test_weights_of_another_length_are_an_execute_error(session):
    bag = nn.EmbeddingBag(VOCAB, HIDDEN, DType.float32, name="t")
    g = build(bag, TensorType(DType.int64, ["n"]), True, TensorType(DType.float32, ["m"]))
    model = session.load(g, {"t": table_of()})
    with pytest.raises(ValueError, match=r"per_sample_weights must have the ids' shape"):
        model.execute(IDS, OFFSETS, np.ones(5, np.float32))


def test_numpy_path_matches_the_reference():
    """What serves while the kernels compile."""
    table = table_of()
    for mode in ("sum", "mean", "max"):
        want, bound = reference(table, IDS, OFFSETS, None, mode, padding_idx=7)
        out = np.empty((OFFSETS.size, HIDDEN), np.float32)
        starts, ends = OFFSETS, np.append(OFFSETS[1:], IDS.size)
        numpy_pool_bags(table, KIND_F32, IDS, False, starts, ends, None, POOLS[mode], 7, 1, out)
        assert_close(out, want, bound)


torch_modes = pytest.mark.parametrize("mode", ["sum", "mean", "max"])


@torch_modes
@pytest.mark.parametrize("dtype", [DType.float32, DType.bfloat16, DType.float16])
@pytest.mark.parametrize(("include_last", "padding_idx"), [(True, 3), (False, None)])
def test_against_torch(session, mode, dtype, include_last, padding_idx):
    """torch 2.13 on CPU mishandles ids after an include_last_offset's last offset (its mean
    counts them in the last bag, and its sum with a padding_idx pools them), so here the last
    offset ends the ids; the reference tests cover trailing ids."""
    torch = pytest.importorskip("torch", reason="torch is the reference of these comparisons")
    np_dtype = dtype.to_numpy()
    table = table_of(np_dtype)
    weights = (
        np.random.default_rng(4).standard_normal(IDS.size).astype(np.float32)
        if mode == "sum" else None
    )  # fmt: skip
    options = {"include_last_offset": include_last, "padding_idx": padding_idx}
    offsets = np.append(OFFSETS, IDS.size) if include_last else OFFSETS
    got = run(session, table, IDS, offsets, weights, dtype=dtype, mode=mode, **options)
    torch_dtype = getattr(torch, dtype.value)
    torch_table = torch.from_numpy(table.astype(np.float32)).to(torch_dtype)
    torch_weights = None if weights is None else torch.from_numpy(weights).to(torch_dtype)
    want = torch.nn.functional.embedding_bag(
        torch.from_numpy(IDS), torch_table, torch.from_numpy(offsets), mode=mode,
        per_sample_weights=torch_weights, **options,
    )  # fmt: skip
    assert str(want.dtype) == f"torch.{got.dtype}"
    weights_used = None if weights is None else torch_weights.float().numpy()
    _, bound = reference(table.astype(np.float32), IDS, offsets, weights_used, mode, **{
        "include_last": include_last, "padding_idx": padding_idx})  # fmt: skip
    # torch may round each weighted term to a narrow table's dtype: a term's eps is then its
    rounding = {"float32": 0.0, "bfloat16": 2.0**-7, "float16": 2.0**-10}[dtype.value]
    terms = 2 + rounding / EPS32
    assert_close(got.astype(np.float32), want.float().numpy().astype(np.float64),
                 terms * bound, rounding)  # fmt: skip


@pytest.mark.parametrize("dtype", [DType.float32, DType.float16])
def test_large_batches_run_in_parallel_and_match(session, dtype):
    """Enough rows read for the native backend's parallel kernel (session: two threads)."""
    table = table_of(dtype.to_numpy(), vocab=3000, hidden=64)
    ids = np.random.default_rng(8).integers(0, 3000, 12000).astype(np.int32)
    offsets = np.sort(np.random.default_rng(9).integers(0, 12000, 599))
    offsets[0] = 0
    for mode in ("sum", "max"):
        want, bound = reference(table.astype(np.float32), ids, offsets, None, mode)
        got = run(session, table, ids, offsets, dtype=dtype, mode=mode)
        rounding = 0.0 if dtype is DType.float32 else 2.0**-11
        assert_close(got, want, bound, rounding)


@pytest.mark.parametrize("offsets_dtype", [DType.int32, DType.uint64])
def test_offsets_of_any_integer_type_pool_and_are_checked(session, offsets_dtype):
    """Offsets are read in their own type: a uint64 one beyond int64 is past the ids too."""
    types = [TensorType(DType.int64, ["n"]), TensorType(offsets_dtype, ["bags"])]
    bag = nn.EmbeddingBag(VOCAB, HIDDEN, DType.float32, name="t")
    with Graph("bags", input_types=types) as g:
        g.output(bag(*g.inputs))
    model = session.load(g, {"t": table_of()})
    offsets_type = offsets_dtype.to_numpy()
    got = model.execute(IDS, OFFSETS.astype(offsets_type))[0].to_numpy()
    assert_close(got, *reference(table_of(), IDS, OFFSETS, None, "sum"))
    huge = np.iinfo(offsets_type).max
    with pytest.raises(ValueError, match=rf"offsets\[1\] = {huge} is past the 12 ids"):
        model.execute(IDS, np.array([0, huge], offsets_type))


@pytest.mark.parametrize("ids_dtype", [DType.int32, DType.uint64])
@pytest.mark.parametrize("quantized", [True, False])
def test_bags_check_every_id_and_write_nothing(session, ids_dtype, quantized):
    """Ids no bag reads (after the last offset) are checked too; a uint64 id beyond int64 is
    outside the table. Quantized and dense tables alike (one collection kernel call each)."""
    if quantized:
        encoding = QuantizationEncoding.ROWWISE_INT8
        table = FORMATS["rowwise_int8"].quantize(table_of())
        bag = nn.EmbeddingBag(VOCAB, table.shape[1], DType.uint8, name="q",
                              quantization_encoding=encoding, include_last_offset=True)  # fmt: skip
    else:
        table = table_of()
        bag = nn.EmbeddingBag(VOCAB, HIDDEN, DType.float32, name="q", include_last_offset=True)
    ids_type = ids_dtype.to_numpy()
    model = session.load(build(bag, TensorType(ids_dtype, ["n"])), {"q": table})
    offsets = np.array([0, 2, 3])  # two bags; ids 3 and 4 are read by none
    bad = VOCAB if ids_type == np.int32 else np.iinfo(ids_type).max
    for at in (1, 3):
        ids = np.array([1, 2, 3, 4, 5], ids_type)
        ids[at] = bad
        with pytest.raises(OutOfRangeError, match=rf"id {bad} at position \({at},\)"):
            model.execute(ids, offsets)
        if session.backend == "native":
            out = np.full((2, HIDDEN), 7.0, np.float32)
            with pytest.raises(OutOfRangeError, match=rf"id {bad} at position \({at},\)"):
                model.execute(ids, offsets, out=[out])
            np.testing.assert_array_equal(out, 7.0)


@pytest.mark.parametrize("dtype", [DType.float32, DType.bfloat16])
def test_a_table_given_at_each_call_is_read_at_each_call(session, dtype):
    """A table that is a graph input, of symbolic width: each call pools the rows it is given
    (another array, the same array changed in place, another width), never the last call's."""
    types = [TensorType(dtype, [VOCAB, "hidden"]), TensorType(DType.int64, ["n"]),
             TensorType(DType.int64, ["bags"])]  # fmt: skip
    with Graph("table_input", input_types=types) as g:
        g.output(ops.embedding_bag(*g.inputs))
    model = session.load(g, {})
    np_dtype = dtype.to_numpy()
    first, second = table_of(np_dtype, seed=1), table_of(np_dtype, seed=2)
    wide = table_of(np_dtype, hidden=HIDDEN + 16, seed=3)
    for table in (first, second, first, wide):
        want, bound = reference(table.astype(np.float32), IDS, OFFSETS, None, "sum")
        got = model.execute(table, IDS, OFFSETS)[0].to_numpy().astype(np.float64)
        assert_close(got, want, bound, rounding=2.0**-8)
    first[:] = second
    want, bound = reference(second.astype(np.float32), IDS, OFFSETS, None, "sum")
    got = model.execute(first, IDS, OFFSETS)[0].to_numpy().astype(np.float64)
    assert_close(got, want, bound, rounding=2.0**-8)


@pytest.mark.parametrize("name", ["rowwise_int8", "rowwise_int4"])
def test_rowwise_bags_of_any_width_sum_decoded_rows_in_bag_order(session, name):
    """Rowwise rows decoded in registers (int4: 32 columns at a time, even and odd columns
    apart) give the float32 sums of the decoded rows added in bag order, bit for bit, for
    widths of one, two and several register tiles."""
    if session.backend != "native":
        pytest.skip("the native kernels' order of additions")
    encoding = QuantizationEncoding[name.upper()]
    rng = np.random.default_rng(11)
    offsets = np.array([0, 0, 1, 7, 30, 31])
    ids = rng.integers(0, VOCAB, 40)
    for hidden in (16, 32, 48, 96, 160, 256):
        table = FORMATS[name].quantize(table_of(hidden=hidden, seed=hidden) * 3)
        decoded = FORMATS[name].dequantize(table).astype(np.float32)
        got = run(session, table, ids, offsets, dtype=DType.uint8, quantization_encoding=encoding)
        ends = [*offsets[1:], len(ids)]
        for b, (start, end) in enumerate(zip(offsets, ends, strict=True)):
            want = np.zeros(hidden, np.float32)
            for i in ids[start:end]:
                want += decoded[i]
            np.testing.assert_array_equal(got[b], want, err_msg=f"width {hidden}, bag {b}")
