"""`nn.EmbeddingBagCollection` / `ops.embedding_bag_collection` on both backends, against a
float64 numpy reference written from TorchRec's layout (values feature-major, lengths
`(features, batch)`, the result in `KeyedTensor` order) and, where torch is installed, torch's
`F.embedding_bag` per feature.

Sum and mean are within `n * 2**-24 * sum |x_i|` of the float64 pooled value (float32
accumulation of `n` terms), max is exact; quantized rows are decoded by `gguf.quants` (GGUF
formats) or the registry's reference decoder.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.errors import OutOfRangeError
from ember.graph import Graph, QuantizationEncoding, TensorType, Weight, ops
from ember.quant import FORMATS

EPS32 = 2.0**-24


def decoded(table: np.ndarray, encoding: QuantizationEncoding | None) -> np.ndarray:
    """A table's rows as float64: GGUF formats through gguf's own dequantize."""
    if encoding is None:
        return np.asarray(table, np.float64)
    name = encoding.name.lower()
    try:
        from gguf import GGMLQuantizationType
        from gguf.quants import dequantize
    except ImportError:  # pragma: no cover - gguf is a test dependency
        return FORMATS[name].dequantize(table).astype(np.float64)
    if encoding.value.upper() in GGMLQuantizationType.__members__:
        return dequantize(table, GGMLQuantizationType[encoding.value.upper()]).astype(np.float64)
    return FORMATS[name].dequantize(table).astype(np.float64)


def reference(tables, bags, features, values, lengths, weights=None):
    """float64 `(batch, widths)` and its bound, pooling each feature's bags as its bag says;
    with `weights` (sum bags), each row times its value's weight (a term rounded once more:
    the bound's `n` is `n + 1`)."""
    batch = lengths.shape[1]
    scale_of = np.ones(len(values)) if weights is None else np.asarray(weights, np.float64)
    out, bound, at = [], [], 0
    for f, t in enumerate(features):
        bag, rows_of = bags[t], decoded(tables[t], bags[t].quantization_encoding)
        vocab, width = rows_of.shape
        got, slack = np.zeros((batch, width)), np.zeros((batch, width))
        for b in range(batch):
            rows = []
            for i, w in zip(values[at : at + lengths[f, b]].tolist(),
                            scale_of[at : at + lengths[f, b]].tolist(), strict=True):  # fmt: skip
                if bag.padding_idx is not None and i == bag.padding_idx:
                    continue
                if 0 <= i < vocab:
                    rows.append(w * rows_of[i])
                elif bag.out_of_range == "zero":
                    rows.append(np.zeros(width))
                else:
                    rows.append(w * rows_of[0 if i < 0 else vocab - 1])
            at += lengths[f, b]
            if not rows:
                continue
            rows = np.array(rows)
            n = len(rows) + (weights is not None)
            if bag.mode == "max":
                got[b] = rows.max(axis=0)
            else:
                scale = len(rows) if bag.mode == "mean" else 1
                got[b] = rows.sum(axis=0) / scale
                slack[b] = n * EPS32 * np.abs(rows).sum(axis=0) / scale
        out.append(got)
        bound.append(slack)
    assert at == len(values)
    return np.concatenate(out, axis=1), np.concatenate(bound, axis=1)


def assert_close(got, want, bound, rounding=0.0):
    got = np.asarray(got, np.float64)
    assert got.shape == want.shape
    excess = np.abs(got - want) - (bound + rounding * np.abs(want) + 1e-30)
    assert (excess <= 0).all(), (
        f"off by {np.abs(got - want).max()} at {np.argwhere(excess > 0)[:3]}"
    )


def quantized(name: str, vocab: int, width: int, seed: int) -> np.ndarray:
    values = np.random.default_rng(seed).standard_normal((vocab, width)).astype(np.float32)
    return FORMATS[name].quantize(values)


def dense(dtype, vocab: int, width: int, seed: int) -> np.ndarray:
    values = np.random.default_rng(seed).standard_normal((vocab, width)).astype(np.float32)
    return values.astype(dtype)


def draw(vocabs, batch, seed, longest=6, empty_every=3):
    """values and lengths for features of these vocabularies, with empty bags."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, longest + 1, (len(vocabs), batch))
    lengths[:, ::empty_every] = 0
    values = np.concatenate([rng.integers(0, v, lengths[f].sum()) for f, v in enumerate(vocabs)])
    return values, lengths


def run(
    session,
    collection,
    tables,
    values,
    lengths,
    values_dtype=DType.int64,
    lengths_dtype=DType.int32,
):
    types = [
        TensorType(values_dtype, ["n"]),
        TensorType(lengths_dtype, [len(collection.features), "batch"]),
    ]
    with Graph("collection", input_types=types) as g:
        g.output(collection(*g.inputs))
    registry = {bag.weight.name: table for bag, table in zip(collection.bags, tables, strict=True)}
    model = session.load(g, registry)
    return model, model.execute(
        values.astype(values_dtype.to_numpy()), lengths.astype(lengths_dtype.to_numpy())
    )[0].to_numpy()


def mixed_bags():
    """Tables of every dense dtype and three block formats, of five widths and three modes."""
    bags = [
        nn.EmbeddingBag(60, 16, DType.float32, name="f32", mode="sum", padding_idx=5),
        nn.EmbeddingBag(40, 8, DType.bfloat16, name="bf16", mode="mean"),
        nn.EmbeddingBag(30, 4, DType.float16, name="f16", mode="max"),
        nn.EmbeddingBag(
            50,
            34,
            DType.uint8,
            quantization_encoding=QuantizationEncoding.Q8_0,
            name="q8",
            mode="mean",
        ),
        nn.EmbeddingBag(
            20,
            144,
            DType.uint8,
            quantization_encoding=QuantizationEncoding.Q4_K,
            name="q4k",
            mode="sum",
        ),
        nn.EmbeddingBag(
            25,
            34,
            DType.uint8,
            quantization_encoding=QuantizationEncoding.Q8_0,
            name="q8max",
            mode="max",
        ),
    ]
    bags += [
        nn.EmbeddingBag(70, 150, DType.float32, name="wide"),  # 128 + 16 columns, then 6
        nn.EmbeddingBag(45, 80, DType.float32, name="mid", mode="mean"),  # 64 + 16
    ]
    tables = [
        dense(np.float32, 60, 16, 1),
        dense(ml_dtypes.bfloat16, 40, 8, 2),
        dense(np.float16, 30, 4, 3),
        quantized("q8_0", 50, 32, 4),
        quantized("q4_k", 20, 256, 5),
        quantized("q8_0", 25, 32, 6),
        dense(np.float32, 70, 150, 7),
        dense(np.float32, 45, 80, 8),
    ]
    return bags, tables


@pytest.mark.parametrize("batch", [1, 7, 300])
def test_mixed_tables_and_a_table_serving_two_features(session, batch):
    bags, tables = mixed_bags()
    features = {"user": 0, "item": 3, "genre": 1, "clicked": 3, "small": 2, "k": 4, "m": 5,
                "wide": 6, "mid": 7, "wide again": 6}  # fmt: skip
    collection = nn.EmbeddingBagCollection(bags, features)
    order = list(features.values())
    values, lengths = draw([bags[t].vocab_size for t in order], batch, seed=batch)
    values[: min(3, values.size)] = 5  # padding ids of the first feature
    _, got = run(session, collection, tables, values, lengths)
    assert got.dtype == np.float32
    want, bound = reference(tables, bags, order, values, lengths)
    assert_close(got, want, bound)
    maxed = [
        c
        for name, t in features.items()
        if bags[t].mode == "max"
        for c in range(*collection.columns[name])
    ]
    np.testing.assert_array_equal(got[:, maxed], want[:, maxed].astype(np.float32))


def test_default_features_are_one_per_bag_named_by_weight(session):
    bags = [
        nn.EmbeddingBag(10, 3, DType.float32, name="a"),
        nn.EmbeddingBag(20, 5, DType.float32, name="b", mode="mean"),
    ]
    collection = nn.EmbeddingBagCollection(bags)
    assert collection.features == {"a": 0, "b": 1}
    assert collection.columns == {"a": (0, 3), "b": (3, 8)}
    tables = [dense(np.float32, 10, 3, 7), dense(np.float32, 20, 5, 8)]
    values = np.array([1, 2, 9, 19, 0, 0, 4])
    lengths = np.array([[2, 0, 1], [0, 4, 0]])
    _, got = run(session, collection, tables, values, lengths)
    want, bound = reference(tables, bags, [0, 1], values, lengths)
    assert_close(got, want, bound)
    np.testing.assert_array_equal(got[0, 3:], 0)  # an empty bag


@pytest.mark.parametrize("dtype", [DType.bfloat16, DType.float16])
def test_narrow_tables_give_their_dtype_rounded_once(session, dtype):
    np_dtype = dtype.to_numpy()
    bags = [nn.EmbeddingBag(30, 8, dtype, name="x"), nn.EmbeddingBag(30, 4, dtype, name="y")]
    tables = [dense(np_dtype, 30, 8, 9), dense(np_dtype, 30, 4, 10)]
    values, lengths = draw([30, 30], 9, seed=11)
    _, got = run(session, nn.EmbeddingBagCollection(bags), tables, values, lengths)
    assert got.dtype == np_dtype
    want, bound = reference(tables, bags, [0, 1], values, lengths)
    rounding = 2.0**-8 if dtype is DType.bfloat16 else 2.0**-11
    assert_close(got.astype(np.float32), want, bound, rounding)


@pytest.mark.parametrize("values_dtype", [DType.int8, DType.uint16, DType.int32, DType.uint64])
def test_every_values_dtype_and_out_of_range_policy(session, values_dtype):
    bags = [
        nn.EmbeddingBag(20, 4, DType.float32, name="zero", out_of_range="zero", mode="max"),
        nn.EmbeddingBag(20, 4, DType.float32, name="clamp", out_of_range="clamp"),
        nn.EmbeddingBag(
            20,
            34,
            DType.uint8,
            quantization_encoding=QuantizationEncoding.Q8_0,
            name="q",
            out_of_range="zero",
        ),
    ]
    tables = [
        dense(np.float32, 20, 4, 12) - 5,
        dense(np.float32, 20, 4, 13),
        quantized("q8_0", 20, 32, 14),
    ]
    big = np.iinfo(values_dtype.to_numpy()).max
    values = np.array([3, big, 19, big, 0, 7, big, 2, 120], np.uint64).astype(
        values_dtype.to_numpy()
    )
    if values_dtype.to_numpy().kind == "i":
        values[4] = -3
    lengths = np.array([[2, 1], [2, 2], [1, 1]])
    _, got = run(session, nn.EmbeddingBagCollection(bags), tables, values, lengths, values_dtype)
    want, bound = reference(tables, bags, [0, 1, 2], values.astype(object), lengths)
    assert_close(got, want, bound)
    np.testing.assert_array_equal(got[0, :4], 0)  # max over a zero row and negative rows


def test_large_batches_run_in_parallel_and_match(session):
    """Enough rows read for the native backend's parallel kernels (session: two threads)."""
    bags, tables = mixed_bags()
    collection = nn.EmbeddingBagCollection(bags, {"a": 0, "b": 3, "c": 4, "d": 0, "e": 6, "f": 7})
    values, lengths = draw([60, 50, 20, 60, 70, 45], 2000, seed=15, longest=12, empty_every=7)
    _, got = run(session, collection, tables, values, lengths)
    want, bound = reference(tables, bags, [0, 3, 4, 0, 6, 7], values, lengths)
    assert_close(got, want, bound)


@pytest.mark.parametrize(
    "name", [n for n in FORMATS if n in ("q4_0", "q6_k", "iq4_xs") or n.startswith("rowwise")]
)
def test_registry_formats_pool_through_their_decoder(session, name):
    """Any registry format pools as its reference decoder decodes it."""
    fmt = FORMATS[name]
    width = 256
    table = quantized(name, 24, width, 16)
    encoding = QuantizationEncoding[name.upper()]
    bags = [
        nn.EmbeddingBag(
            24, table.shape[1], DType.uint8, quantization_encoding=encoding, name="q", mode="mean"
        ),
        nn.EmbeddingBag(24, 8, DType.float32, name="d"),
    ]
    tables = [table, dense(np.float32, 24, 8, 17)]
    values, lengths = draw([24, 24], 11, seed=18)
    _, got = run(session, nn.EmbeddingBagCollection(bags), tables, values, lengths)
    want, bound = reference(tables, bags, [0, 1], values, lengths)
    assert fmt.dequantize(table).shape == (24, width)
    assert_close(got, want, bound)


def test_against_torch_per_feature(session):
    torch = pytest.importorskip("torch", reason="torch is the reference of this comparison")
    bags = [
        nn.EmbeddingBag(40, 16, DType.float32, name="s", mode="sum", padding_idx=2),
        nn.EmbeddingBag(30, 8, DType.float32, name="m", mode="mean"),
        nn.EmbeddingBag(30, 8, DType.float32, name="x", mode="max"),
    ]
    tables = [
        dense(np.float32, 40, 16, 19),
        dense(np.float32, 30, 8, 20),
        dense(np.float32, 30, 8, 21),
    ]
    features = [0, 1, 2, 0]
    values, lengths = draw([40, 30, 30, 40], 13, seed=22)
    collection = nn.EmbeddingBagCollection(bags, {f"f{i}": t for i, t in enumerate(features)})
    _, got = run(session, collection, tables, values, lengths)
    _, bound = reference(tables, bags, features, values, lengths)
    at, column = 0, 0
    for f, t in enumerate(features):
        size = int(lengths[f].sum())
        offsets = np.concatenate([[0], np.cumsum(lengths[f])[:-1]])
        want = torch.nn.functional.embedding_bag(
            torch.from_numpy(values[at : at + size]),
            torch.from_numpy(tables[t]),
            torch.from_numpy(offsets),
            mode=bags[t].mode,
            padding_idx=bags[t].padding_idx,
        ).numpy()
        width = tables[t].shape[1]
        part = slice(column, column + width)
        assert_close(got[:, part], want.astype(np.float64), 2 * bound[:, part])
        at, column = at + size, column + width


def error_model(session):
    bags = [
        nn.EmbeddingBag(10, 4, DType.float32, name="e"),
        nn.EmbeddingBag(5, 4, DType.float32, name="z", out_of_range="zero"),
    ]
    types = [TensorType(DType.int64, ["n"]), TensorType(DType.int64, [3, "batch"])]
    with Graph("errors", input_types=types) as g:
        g.output(nn.EmbeddingBagCollection(bags, {"a": 0, "b": 1, "c": 0})(*g.inputs))
    return session.load(g, {"e": dense(np.float32, 10, 4, 23), "z": dense(np.float32, 5, 4, 24)})


@pytest.mark.parametrize(
    ("values", "lengths", "error", "message"),
    [
        ([1, 2, 3], [[1, 1], [0, 0], [0, 0]], ValueError, "lengths sum to 2, but there are 3 "),
        ([1, 2, 3], [[1, 1], [0, 2], [0, -1]], ValueError, r"lengths\[2, 1\] = -1 is negative"),
        # feature "b" (zero) may name 7; feature "c" (error) may not: position 4 of the values
        (
            [1, 2, 7, 3, 10],
            [[1, 1], [1, 1], [1, 0]],
            OutOfRangeError,
            r"id 10 at position \(4,\).*\[0, 10\)",
        ),
        ([-1, 2, 3], [[1, 1], [0, 0], [1, 0]], OutOfRangeError, r"id -1 at position \(0,\)"),
    ],
)
def test_bad_input_raises_and_writes_nothing(session, values, lengths, error, message):
    model = error_model(session)
    values, lengths = np.array(values, np.int64), np.array(lengths, np.int64)
    with pytest.raises(error, match=message):
        model.execute(values, lengths)
    if session.backend == "native":
        out = np.full((2, 12), 7.0, np.float32)
        with pytest.raises(error, match=message):
            model.execute(values, lengths, out=[out])
        np.testing.assert_array_equal(out, 7.0)


def test_bad_declarations_are_build_time_errors():
    table = Weight("w", DType.float32, [10, 4])
    ids, lengths = TensorType(DType.int64, ["n"]), TensorType(DType.int64, [2, "b"])
    with Graph("g", input_types=[ids, lengths, TensorType(DType.float32, ["n"])]) as g:
        values, sizes, floats = g.inputs
        with pytest.raises(ValueError, match=r"lengths must be \(features, batch\) = \(1, batch\)"):
            ops.embedding_bag_collection([table], values, sizes)
        with pytest.raises(ValueError, match="feature 1 reads table 3, but there are 1 tables"):
            ops.embedding_bag_collection([table], values, sizes, features=[0, 3])
        with pytest.raises(ValueError, match="modes needs one entry per table"):
            ops.embedding_bag_collection([table], values, sizes, features=[0, 0], modes=[])
        with pytest.raises(ValueError, match=r"modes\[0\] must be one of"):
            ops.embedding_bag_collection([table], values, sizes, features=[0, 0], modes=["median"])
        with pytest.raises(TypeError, match="integer dtype"):
            ops.embedding_bag_collection([table], floats, sizes, features=[0, 0])
        square = ops.constant(np.zeros((2, 2), np.int64), DType.int64)
        with pytest.raises(ValueError, match="values must be 1-D"):
            ops.embedding_bag_collection([table], square, sizes, features=[0, 0])
    bag = nn.EmbeddingBag(10, 4, DType.float32, name="w")
    with pytest.raises(ValueError, match="feature 'x' reads bag 2; there are 1 bags"):
        nn.EmbeddingBagCollection([bag], {"x": 2})
    with pytest.raises(TypeError, match=r"bags\[0\] must be an EmbeddingBag"):
        nn.EmbeddingBagCollection([nn.EmbeddingV2(10, 4, DType.float32)])
    for index in (0.7, "0", None):
        with pytest.raises(TypeError, match=rf"feature 'x' reads bag {index!r}; give the bag's"):
            nn.EmbeddingBagCollection([bag], {"x": index})
    with pytest.raises(TypeError, match="features maps each feature's name to the index"):
        nn.EmbeddingBagCollection([bag], ["x"])
    with pytest.raises(TypeError, match="feature names are strings, got 0"):
        nn.EmbeddingBagCollection([bag], {0: 0})
    unnamed = [nn.EmbeddingBag(10, 4, DType.float32), nn.EmbeddingBag(10, 4, DType.float32)]
    for bags in ([bag, bag], unnamed):  # TorchRec refuses duplicate table names too
        with pytest.raises(ValueError, match=r"bags\[0\] and bags\[1\] are both named"):
            nn.EmbeddingBagCollection(bags)


def test_numpy_path_gives_the_kernels_bits():
    """What serves while the kernels compile (and formats without a compiled decoder)."""
    from ember.engine.backends.native.kernels.bag import KIND_BF16, POOLS
    from ember.engine.backends.native.kernels.bag_collection import BagCollection, TableSpec
    from ember.engine.backends.native.kernels.out_of_range import CLAMP, ERROR, ZERO

    tables = [
        dense(np.float32, 30, 8, 25),
        dense(ml_dtypes.bfloat16, 20, 4, 26).view(np.uint16),
        quantized("q8_0", 25, 32, 27),
        dense(np.float32, 30, 200, 28),
    ]
    specs = [TableSpec(None), TableSpec(None, KIND_BF16), TableSpec("q8_0"), TableSpec(None)]
    features = np.array(
        [
            [0, 0, POOLS["sum"], 3, CLAMP, 0, 8],
            [1, 2, POOLS["mean"], -1, ZERO, 8, 32],
            [2, 1, POOLS["max"], -1, CLAMP, 40, 4],
            [3, 0, POOLS["mean"], -1, ZERO, 44, 8],
            [4, 3, POOLS["sum"], -1, ERROR, 52, 200],  # checked ids: summed in registers
        ]
    )
    values, lengths = draw([30, 25, 20, 30, 30], 17, seed=28)
    values[[0, 1, 2]] = [99, 3, -2]
    starts = np.concatenate([[0], np.cumsum(lengths.reshape(-1))])
    pools = BagCollection(specs, features, values.dtype)
    compiled = np.full((17, 252), np.nan, np.float32)
    pools(tables, values, starts, compiled, False)
    for group in pools._groups:
        group.compiled = False
    numpy = np.full((17, 252), np.nan, np.float32)
    pools(tables, values, starts, numpy, False)
    np.testing.assert_array_equal(numpy, compiled)


@pytest.mark.parametrize("values_dtype", [DType.int32, DType.uint64])
def test_quantized_features_check_their_ids_and_write_nothing(session, values_dtype):
    """Features of quantized tables under "error" (int8 and Q8_0 tables, one serving two
    features): the first id outside its own table is named, a uint64 one beyond int64 too."""
    rowwise = QuantizationEncoding.ROWWISE_INT8
    bags = [
        nn.EmbeddingBag(30, 24, DType.uint8, quantization_encoding=rowwise, name="r"),
        nn.EmbeddingBag(
            8, 34, DType.uint8, quantization_encoding=QuantizationEncoding.Q8_0, name="q"
        ),
    ]
    collection = nn.EmbeddingBagCollection(bags, {"a": 0, "b": 1, "c": 0})
    types = [TensorType(values_dtype, ["n"]), TensorType(DType.int64, [3, "batch"])]
    with Graph("errors", input_types=types) as g:
        g.output(collection(*g.inputs))
    tables = {"r": quantized("rowwise_int8", 30, 16, 31), "q": quantized("q8_0", 8, 32, 32)}
    model = session.load(g, tables)
    values_type = values_dtype.to_numpy()
    lengths = np.array([[1, 2], [2, 0], [1, 1]])
    huge = np.iinfo(values_type).max
    # "b" reads the 8-row table: 8 is outside it though inside "a"'s and "c"'s table
    for values, at, bad in [
        ([29, 0, 1, 2, 8, 5, 6], 4, 8),
        ([29, 0, 1, 2, 7, 5, huge], 6, huge),
        ([huge, 0, 1, 2, 7, 30, 6], 0, huge),
    ]:
        values = np.array(values, np.uint64).astype(values_type)
        with pytest.raises(OutOfRangeError, match=rf"id {bad} at position \({at},\)"):
            model.execute(values, lengths)
        if session.backend == "native":
            out = np.full((2, 64), 7.0, np.float32)  # widths 16, 32, 16
            with pytest.raises(OutOfRangeError, match=rf"id {bad} at position \({at},\)"):
                model.execute(values, lengths, out=[out])
            np.testing.assert_array_equal(out, 7.0)
