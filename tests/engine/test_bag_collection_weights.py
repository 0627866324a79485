"""Per-sample weights in `nn.EmbeddingBagCollection` (TorchRec's weighted `KeyedJaggedTensor`)
on both backends, sharded and not: each row times its value's weight, summed in float32 in
bag order. Against a float64 reference (each term `w * x` rounded once more than an unweighted
one: the bound is `(n + 1) * 2**-24 * sum |w x|`), torch's `F.embedding_bag` and
`embedding_bag_byte_rowwise_offsets` with `per_sample_weights`, and the unsharded collection."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from test_bag_collection_sharded import devices
from test_embedding_bag_collection import EPS32, assert_close, dense, draw, quantized, reference

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.errors import OutOfRangeError
from ember.graph import Graph, QuantizationEncoding, TensorType

Q = QuantizationEncoding


def weighted_bags():
    """Sum bags over every dense dtype, GGUF blocks and rowwise int8/int4 rows, with a padding
    id, and "zero" and "clamp" tables."""
    bags = [
        nn.EmbeddingBag(60, 16, DType.float32, name="f32", padding_idx=5),
        nn.EmbeddingBag(40, 8, DType.bfloat16, name="bf16", out_of_range="zero"),
        nn.EmbeddingBag(30, 4, DType.float16, name="f16", out_of_range="clamp"),
        nn.EmbeddingBag(50, 34, DType.uint8, quantization_encoding=Q.Q8_0, name="q8"),
        nn.EmbeddingBag(20, 144, DType.uint8, quantization_encoding=Q.Q4_K, name="q4k"),
        nn.EmbeddingBag(33, 40, DType.uint8, quantization_encoding=Q.ROWWISE_INT8, name="i8"),
        nn.EmbeddingBag(27, 36, DType.uint8, quantization_encoding=Q.ROWWISE_INT4, name="i4"),
        nn.EmbeddingBag(70, 150, DType.float32, name="wide"),  # summed in registers unweighted
    ]
    tables = [
        dense(np.float32, 60, 16, 1),
        dense(ml_dtypes.bfloat16, 40, 8, 2),
        dense(np.float16, 30, 4, 3),
        quantized("q8_0", 50, 32, 4),
        quantized("q4_k", 20, 256, 5),
        quantized("rowwise_int8", 33, 32, 6),
        quantized("rowwise_int4", 27, 64, 7),
        dense(np.float32, 70, 150, 8),
    ]
    return bags, tables


FEATURES = {"user": 0, "genre": 1, "small": 2, "item": 3, "k": 4, "int8": 5, "int4": 6,
            "wide": 7, "item again": 3}  # fmt: skip


def weighted_pooled(session, collection, tables, values, lengths, weights, *, name="weighted"):
    """The collection's outputs (a list) for these weights, and the model."""
    types = [
        TensorType(DType.int64, ["n"]),
        TensorType(DType.int32, [len(collection.features), "batch"]),
        TensorType(DType.float32, ["n"]),
    ]
    with Graph(name, input_types=types) as g:
        out = collection(*g.inputs)
        g.output(*(out if isinstance(out, list) else [out]))
    registry = {bag.weight.name: table for bag, table in zip(collection.bags, tables, strict=True)}
    model = session.load(g, registry)
    outs = model.execute(values.astype(np.int64), lengths.astype(np.int32), weights)
    return [o.to_numpy() for o in outs], model


def draw_weighted(bags, features, batch, seed, longest=6):
    values, lengths = draw([bags[t].vocab_size + 2 for t in features], batch, seed, longest)
    weights = np.random.default_rng(seed + 1).uniform(-2, 2, values.size).astype(np.float32)
    return values, lengths, weights


@pytest.mark.parametrize("batch", [2, 9, 1500])
def test_weighted_rows_are_summed_within_the_bound(session, batch):
    """Ids 2 past each table reach "zero" and "clamp" rows; 1500 samples run the parallel
    kernels natively."""
    bags, tables = weighted_bags()
    order = list(FEATURES.values())
    values, lengths, weights = draw_weighted(bags, order, batch, seed=batch)
    values[values >= np.repeat([bags[t].vocab_size for t in order], lengths.sum(axis=1))] = 1
    bad_ok = np.flatnonzero(np.repeat(np.isin(order, [1, 2]), lengths.sum(axis=1)))
    values[bad_ok[::4]] += 60  # outside the "zero" and "clamp" tables
    values[: min(2, values.size)] = 5  # the first feature's padding id
    [got], _ = weighted_pooled(session, nn.EmbeddingBagCollection(bags, FEATURES), tables,
                               values, lengths, weights)  # fmt: skip
    want, bound = reference(tables, bags, order, values, lengths, weights)
    assert_close(got, want, bound)
    unweighted = reference(tables, bags, order, values, lengths, np.ones_like(weights))
    assert np.abs(want - unweighted[0]).max() > 1  # the weights made a difference


def test_weights_of_one_give_the_unweighted_bits(session):
    bags, tables = weighted_bags()
    order = list(FEATURES.values())
    values, lengths, _ = draw_weighted(bags, order, 40, seed=3)
    values %= np.repeat([bags[t].vocab_size for t in order], lengths.sum(axis=1))
    collection = nn.EmbeddingBagCollection(bags, FEATURES)
    [got], _ = weighted_pooled(session, collection, tables, values, lengths,
                               np.ones(values.size, np.float32))  # fmt: skip
    types = [TensorType(DType.int64, ["n"]), TensorType(DType.int32, [len(order), "batch"])]
    with Graph("unweighted", input_types=types) as g:
        g.output(collection(*g.inputs))
    model = session.load(g, {b.weight.name: t for b, t in zip(bags, tables, strict=True)})
    plain = model.execute(values, lengths.astype(np.int32))[0].to_numpy()
    np.testing.assert_array_equal(got, plain)


def test_against_torch_dense_and_rowwise_int8(session):
    torch = pytest.importorskip("torch", reason="torch is the reference of this comparison")
    rng = np.random.default_rng(9)
    dense_rows = rng.standard_normal((40, 16)).astype(np.float32)
    packed = torch.ops.quantized.embedding_bag_byte_prepack(
        torch.from_numpy(rng.standard_normal((30, 32)).astype(np.float32))
    )
    bags = [
        nn.EmbeddingBag(40, 16, DType.float32, name="d", padding_idx=2),
        nn.EmbeddingBag(30, 40, DType.uint8, quantization_encoding=Q.ROWWISE_INT8, name="q"),
    ]
    tables = [dense_rows, packed.numpy()]
    features = [0, 1, 0]
    values, lengths, weights = draw_weighted(bags, features, 13, seed=10)
    values %= np.repeat([40, 30, 40], lengths.sum(axis=1))
    collection = nn.EmbeddingBagCollection(bags, {f"f{i}": t for i, t in enumerate(features)})
    [got], _ = weighted_pooled(session, collection, tables, values, lengths, weights)
    _, bound = reference(tables, bags, features, values, lengths, weights)
    at, column = 0, 0
    for f, t in enumerate(features):
        size = int(lengths[f].sum())
        ids = torch.from_numpy(values[at : at + size])
        offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths[f])[:-1]]))
        w = torch.from_numpy(weights[at : at + size])
        if t == 0:
            want = torch.nn.functional.embedding_bag(
                ids, torch.from_numpy(dense_rows), offsets, mode="sum",
                per_sample_weights=w, padding_idx=2,
            )  # fmt: skip
            slack = 0.0
        else:
            want = torch.ops.quantized.embedding_bag_byte_rowwise_offsets(
                packed, ids, offsets, mode=0, per_sample_weights=w
            )
            # torch folds each weight into the row's scale and bias: its terms are rounded
            # against |w| (|scale * level| + |bias|), not against |w x|
            rows = tables[1][values[at : at + size]]
            scale, bias = rows[:, 32:].copy().view(np.float32).astype(np.float64).T
            parts = np.abs(weights[at : at + size, None]) * (
                np.abs(scale[:, None] * rows[:, :32]) + np.abs(bias[:, None])
            )
            bag_of = np.repeat(np.arange(lengths.shape[1]), lengths[f])
            per_bag = np.zeros((lengths.shape[1], 32))
            np.add.at(per_bag, bag_of, parts)
            slack = 4 * EPS32 * per_bag
        width = want.shape[1]
        part = slice(column, column + width)
        assert_close(got[:, part], want.numpy().astype(np.float64), 2 * bound[:, part] + slack)
        at, column = at + size, column + width


@pytest.mark.parametrize(
    ("n", "sharding"), [(2, "table"), (2, "row"), (3, [0, "row", 2, "row", 1, "row", 0, "row"])]
)
def test_sharded_weighted_collection_equals_the_unsharded_one(session, n, sharding):
    """Weights travel with the ids they scale: tables held whole give the unsharded bits,
    row-split ones are within the bound."""
    bags, tables = weighted_bags()
    order = list(FEATURES.values())
    values, lengths, weights = draw_weighted(bags, order, 25, seed=n)
    values %= np.repeat([bags[t].vocab_size for t in order], lengths.sum(axis=1))
    [single], _ = weighted_pooled(session, nn.EmbeddingBagCollection(bags, FEATURES), tables,
                                  values, lengths, weights)  # fmt: skip
    sharded = nn.EmbeddingBagCollection(bags, FEATURES, devices=devices(n), sharding=sharding)
    outs, _ = weighted_pooled(session, sharded, tables, values, lengths, weights, name="sharded")
    want, bound = reference(tables, bags, order, values, lengths, weights)
    whole = [
        c
        for name, t in FEATURES.items()
        if sharded.placement[t] != "row"
        for c in range(*sharded.columns[name])
    ]
    assert len(outs) == n
    for out in outs:
        assert_close(out, want, 2 * bound)
        np.testing.assert_array_equal(out[:, whole], single[:, whole])


def test_bad_weights_are_clear_errors(session):
    bags = [nn.EmbeddingBag(10, 4, DType.float32, name="s"),
            nn.EmbeddingBag(10, 4, DType.float32, name="m", mode="mean")]  # fmt: skip
    types = [TensorType(DType.int64, ["n"]), TensorType(DType.int32, [2, "batch"])]
    mean_bag = pytest.raises(ValueError, match=r"only for mode='sum'.*feature 1 reads table 1")
    with Graph("mean", input_types=types) as g, mean_bag:
        nn.EmbeddingBagCollection(bags)(*g.inputs, np.ones(3, np.float32))
    types[1] = TensorType(DType.int32, [1, "batch"])
    with Graph("build", input_types=types) as g:
        values, lengths = g.inputs
        single = nn.EmbeddingBagCollection(bags[:1])
        with pytest.raises(TypeError, match=r"per_sample_weights must be floats"):
            single(values, lengths, np.ones(3, np.int32))
        with pytest.raises(ValueError, match=r"per_sample_weights must have the ids' shape"):
            single(values, lengths, np.ones((3, 1), np.float32))
    types.append(TensorType(DType.float32, ["m"]))
    with Graph("runtime", input_types=types) as g:
        g.output(nn.EmbeddingBagCollection(bags[:1])(*g.inputs))
    model = session.load(g, {"s": dense(np.float32, 10, 4, 11)})
    values, lengths = np.array([1, 2, 3]), np.array([[2, 1]], np.int32)
    with pytest.raises(ValueError, match=r"per_sample_weights must have the ids' shape \(3,\)"):
        model.execute(values, lengths, np.ones(2, np.float32))
    with pytest.raises(OutOfRangeError):
        model.execute(np.array([1, 2, 10]), lengths, np.ones(3, np.float32))


def test_numpy_path_gives_the_kernels_weighted_bits():
    """What serves while the kernels compile pools weighted rows with the same operations."""
    from ember.engine.backends.native.kernels.bag import KIND_BF16, POOLS
    from ember.engine.backends.native.kernels.bag_collection import BagCollection, TableSpec
    from ember.engine.backends.native.kernels.out_of_range import CLAMP, ERROR, ZERO

    tables = [
        dense(np.float32, 30, 8, 25),
        dense(ml_dtypes.bfloat16, 20, 4, 26).view(np.uint16),
        quantized("q8_0", 25, 32, 27),
        quantized("rowwise_int8", 30, 32, 28),
        dense(np.float32, 30, 40, 30),  # 16 columns twice in registers, then 8
    ]
    specs = [TableSpec(None), TableSpec(None, KIND_BF16), TableSpec("q8_0"),
             TableSpec("rowwise_int8"), TableSpec(None)]  # fmt: skip
    features = np.array(
        [
            [0, 0, POOLS["sum"], 3, CLAMP, 0, 8],
            [1, 2, POOLS["sum"], -1, ZERO, 8, 32],
            [2, 1, POOLS["sum"], -1, CLAMP, 40, 4],
            [3, 3, POOLS["sum"], -1, ERROR, 44, 32],
            [4, 0, POOLS["sum"], -1, ERROR, 76, 8],
            [5, 4, POOLS["sum"], -1, ERROR, 84, 40],
        ]
    )
    values, lengths = draw([30, 25, 20, 30, 30, 30], 17, seed=28)
    values[[0, 1, 2]] = [99, 3, -2]
    weights = np.random.default_rng(29).uniform(-3, 3, values.size).astype(np.float32)
    starts = np.concatenate([[0], np.cumsum(lengths.reshape(-1))])
    pools = BagCollection(specs, features, values.dtype)
    compiled = np.full((17, 124), np.nan, np.float32)
    pools(tables, values, starts, compiled, False, weights=weights)
    for group in pools._groups:
        group.compiled = False
    numpy = np.full((17, 124), np.nan, np.float32)
    pools(tables, values, starts, numpy, False, weights=weights)
    np.testing.assert_array_equal(numpy, compiled)
    unweighted = np.full((17, 124), np.nan, np.float32)
    pools(tables, values, starts, unweighted, False)
    assert not np.array_equal(unweighted, compiled)


@pytest.mark.parametrize("sharded", [False, True], ids=["one device", "2 rows"])
def test_ids_that_add_nothing_ignore_their_weights(session, sharded):
    """An id outside a "zero" table and a padding id add nothing, whatever their weight (NaN,
    inf): on every backend, sharded or not, compiled kernels or numpy."""
    bags = [nn.EmbeddingBag(4, 3, DType.float32, name="z", out_of_range="zero", padding_idx=2)]
    table = np.arange(12, dtype=np.float32).reshape(4, 3) + 1
    values, lengths = np.array([9, 1, 7, 2, 3]), np.array([[1, 4]])
    weights = np.array([np.nan, 1, np.inf, -np.inf, 2], np.float32)
    places = devices(2) if sharded else None
    collection = nn.EmbeddingBagCollection(
        bags, devices=places, sharding="row" if sharded else "table"
    )
    outs, _ = weighted_pooled(session, collection, [table], values, lengths, weights)
    want = np.array([[0, 0, 0], table[1] + 2 * table[3]], np.float32)
    for out in outs:
        np.testing.assert_array_equal(out, want)


def test_the_numpy_path_ignores_weights_of_ids_that_add_nothing():
    from ember.engine.backends.native.kernels.bag import POOLS
    from ember.engine.backends.native.kernels.bag_collection import BagCollection, TableSpec
    from ember.engine.backends.native.kernels.out_of_range import ZERO

    tables = [dense(np.float32, 4, 3, 40), quantized("q8_0", 4, 32, 41)]
    features = np.array(
        [[0, 0, POOLS["sum"], 2, ZERO, 0, 3], [1, 1, POOLS["sum"], -1, ZERO, 3, 32]]
    )
    values, starts = np.array([9, 1, 2, 7, 0]), np.array([0, 3, 5])
    weights = np.array([np.nan, 1, np.inf, -np.inf, 2], np.float32)
    pools = BagCollection([TableSpec(None), TableSpec("q8_0")], features, values.dtype)
    compiled, numpy = np.empty((1, 35), np.float32), np.empty((1, 35), np.float32)
    pools(tables, values, starts, compiled, False, weights=weights)
    for group in pools._groups:
        group.compiled = False
    pools(tables, values, starts, numpy, False, weights=weights)
    assert not np.isnan(compiled).any()
    np.testing.assert_array_equal(numpy, compiled)


def test_read_only_ids_and_weights_use_the_compiled_kernel():
    """Frozen inputs are read through writeable-typed views: no second kernel is compiled in
    the middle of an execute."""
    from ember.engine.backends.native.kernels.bag import collection_kernels

    bags = [nn.EmbeddingBag(10, 16, DType.float32, name="t")]
    values, lengths = np.array([1, 2, 3], np.int64), np.array([[2, 1]], np.int32)
    weights = np.ones(3, np.float32)
    session = InferenceSession(num_threads=1, backend="native")
    table = dense(np.float32, 10, 16, 42)
    collection = nn.EmbeddingBagCollection(bags)
    _, model = weighted_pooled(session, collection, [table], values, lengths, weights)
    serial = collection_kernels(None)[0]
    known = len(serial.signatures)
    for array in (values, lengths, weights):
        array.flags.writeable = False
    [got] = model.execute(values, lengths, weights)
    assert len(serial.signatures) == known
    np.testing.assert_array_equal(got.to_numpy(), [table[1] + table[2], table[3]])


def test_a_single_bag_ignores_weights_of_ids_that_add_nothing(session):
    bag = nn.EmbeddingBag(4, 3, DType.float32, name="z", out_of_range="zero", padding_idx=2)
    types = [TensorType(DType.int64, ["n"]), TensorType(DType.int64, ["b"]),
             TensorType(DType.float32, ["n"])]  # fmt: skip
    with Graph("single", input_types=types) as g:
        g.output(bag(*g.inputs))
    table = np.arange(12, dtype=np.float32).reshape(4, 3) + 1
    weights = np.array([np.nan, 1, np.inf, -np.inf, 2], np.float32)
    model = session.load(g, {"z": table})
    [got] = model.execute(np.array([9, 1, 7, 2, 3]), np.array([0, 1]), weights)
    np.testing.assert_array_equal(got.to_numpy(), [[0, 0, 0], table[1] + 2 * table[3]])
