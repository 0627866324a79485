"""`nn.EmbeddingBagCollection(..., devices=...)` sharded table-wise and row-wise on both
backends, against the unsharded collection and the float64 reference of
`test_embedding_bag_collection`: every device gets the whole result; max and tables held whole
give the unsharded bits, row-split sums and means are within the collection's bound (their
terms are grouped by device); partial vectors, not rows, cross devices (XLA counts them)."""

from __future__ import annotations

import numpy as np
import pytest
from test_embedding_bag_collection import assert_close, draw, mixed_bags, quantized, reference

import ember.nn as nn
from ember.driver import CPU
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.errors import OutOfRangeError
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType

FEATURES = {"user": 0, "item": 3, "genre": 1, "clicked": 3, "small": 2, "k": 4, "m": 5,
            "wide": 6, "mid": 7, "wide again": 6, "int8": 8}  # fmt: skip


def devices(n: int) -> list[DeviceRef]:
    return [DeviceRef.CPU(i) for i in range(n)]


def bags_and_tables():
    """`mixed_bags` (float32, bfloat16, float16, Q8_0 and Q4_K tables of five widths, every
    mode, a padding id) and a rowwise int8 max table."""
    bags, tables = mixed_bags()
    int8 = QuantizationEncoding.ROWWISE_INT8
    bags.append(nn.EmbeddingBag(33, 24, DType.uint8, None, int8, "int8", mode="max"))
    tables.append(quantized("rowwise_int8", 33, 16, 9))
    return bags, tables


def pooled(session, collection, tables, values, lengths, values_dtype=DType.int64):
    """Each output of the collection's model (a list, sharded or not) as numpy, and the model."""
    types = [
        TensorType(values_dtype, ["n"]),
        TensorType(DType.int32, [len(collection.features), "batch"]),
    ]
    with Graph("collection", input_types=types) as g:
        out = collection(*g.inputs)
        g.output(*(out if isinstance(out, list) else [out]))
    registry = {bag.weight.name: table for bag, table in zip(collection.bags, tables, strict=True)}
    model = session.load(g, registry)
    outs = model.execute(values.astype(values_dtype.to_numpy()), lengths.astype(np.int32))
    return outs, model


def columns_of(collection, modes=("max",), whole=()):
    """The result's columns of features whose bag pools by one of `modes` or is in `whole`."""
    return [
        c
        for name, t in collection.features.items()
        if collection.bags[t].mode in modes or t in whole
        for c in range(*collection.columns[name])
    ]


@pytest.mark.parametrize(
    ("n", "sharding"),
    [(2, "table"), (3, "table"), (2, "row"), (4, "row"), (3, [0, "row", 2, "row", 1, "row", 0,
     "row", "row"])],
)  # fmt: skip
@pytest.mark.parametrize("batch", [1, 9, 200])
def test_equals_the_unsharded_collection(session, n, sharding, batch):
    bags, tables = bags_and_tables()
    order = list(FEATURES.values())
    values, lengths = draw([bags[t].vocab_size for t in order], batch, seed=batch + n)
    values[: min(3, values.size)] = 5  # the first feature's padding id
    single = nn.EmbeddingBagCollection(bags, FEATURES)
    [unsharded], _ = pooled(session, single, tables, values, lengths)
    unsharded = unsharded.to_numpy()
    sharded = nn.EmbeddingBagCollection(bags, FEATURES, devices=devices(n), sharding=sharding)
    outs, _ = pooled(session, sharded, tables, values, lengths)
    assert [o.device for o in outs] == [CPU(i) for i in range(n)]
    want, bound = reference(tables, bags, order, values, lengths)
    whole = [t for t, place in enumerate(sharded.placement) if place != "row"]
    same_bits = columns_of(sharded, whole=whole)
    assert len(same_bits) < unsharded.shape[1] or sharding == "table"
    for out in outs:
        got = out.to_numpy()
        assert got.dtype == unsharded.dtype and got.shape == unsharded.shape
        assert_close(got, want, bound)
        np.testing.assert_array_equal(got[:, same_bits], unsharded[:, same_bits])


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_a_device_holding_none_of_a_bags_rows_adds_nothing(session, mode):
    """Negative rows split over four devices: bags whose rows all sit on one device, an
    empty bag and a bag of padding ids only pool as the unsharded collection does (a device
    with none of a bag's rows must not offer 0 to its max)."""
    table = -1.0 - np.arange(40, dtype=np.float32).reshape(8, 5)
    bag = nn.EmbeddingBag(8, 5, DType.float32, name="t", mode=mode, padding_idx=7)
    values = np.array([0, 1, 6, 6, 3, 7, 7, 2, 5])
    lengths = np.array([[2, 2, 1, 0, 2, 2]])
    [single], _ = pooled(session, nn.EmbeddingBagCollection([bag]), [table], values, lengths)
    sharded = nn.EmbeddingBagCollection([bag], devices=devices(4), sharding="row")
    outs, _ = pooled(session, sharded, [table], values, lengths)
    want = [table[[0, 1]], table[[6, 6]], table[[3]], [], [], table[[2, 5]]]
    pool = {"sum": np.sum, "mean": np.mean, "max": np.max}[mode]
    expected = np.array([pool(rows, axis=0) if len(rows) else np.zeros(5) for rows in want])
    for out in outs:
        np.testing.assert_allclose(out.to_numpy(), expected, rtol=1e-6)
        np.testing.assert_array_equal(out.to_numpy(), single.to_numpy())


@pytest.mark.parametrize("policy", ["zero", "clamp"])
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("values_dtype", [DType.int64, DType.uint64])
def test_out_of_range_policies_match_the_unsharded_collection(session, policy, mode, values_dtype):
    table = -1.0 - np.arange(30, dtype=np.float32).reshape(10, 3)
    bag = nn.EmbeddingBag(10, 3, DType.float32, name="t", mode=mode, out_of_range=policy)
    values = np.array([3, 10, 2**40, 9, 0, 12, 4, 5, 6])
    if values_dtype is DType.int64:
        values[[1, 4]] = -3
    lengths = np.array([[3, 1, 0, 2, 3]])
    single = nn.EmbeddingBagCollection([bag])
    [want], _ = pooled(session, single, [table], values, lengths, values_dtype)
    sharded = nn.EmbeddingBagCollection([bag], devices=devices(3), sharding="row")
    outs, _ = pooled(session, sharded, [table], values, lengths, values_dtype)
    for out in outs:
        np.testing.assert_allclose(out.to_numpy(), want.to_numpy(), rtol=1e-6)
        if mode == "max":
            np.testing.assert_array_equal(out.to_numpy(), want.to_numpy())


@pytest.mark.parametrize("sharding", ["table", "row"])
def test_a_bad_id_raises_naming_its_position(session, sharding):
    bags = [nn.EmbeddingBag(10, 4, DType.float32, name="a"),
            nn.EmbeddingBag(6, 2, DType.float32, name="b")]  # fmt: skip
    tables = [np.ones((10, 4), np.float32), np.ones((6, 2), np.float32)]
    collection = nn.EmbeddingBagCollection(bags, devices=devices(2), sharding=sharding)
    with pytest.raises(OutOfRangeError, match=r"id 6 at position \(4,\).*vocab_size=6"):
        pooled(session, collection, tables, np.array([1, 9, 0, 5, 6]), np.array([[2, 1], [1, 1]]))
    with pytest.raises(ValueError, match="lengths sum to 4, but there are 5 values"):
        pooled(session, collection, tables, np.array([1, 9, 0, 5, 1]), np.array([[2, 1], [1, 0]]))


def test_native_devices_share_one_read_only_result():
    bags, tables = bags_and_tables()
    session = InferenceSession(backend="native")
    collection = nn.EmbeddingBagCollection(bags, devices=devices(3), sharding="row")
    values, lengths = draw([b.vocab_size for b in bags], 4, seed=1)
    outs, _ = pooled(session, collection, tables, values, lengths)
    arrays = [o.to_numpy() for o in outs]
    assert all(np.shares_memory(arrays[0], a) for a in arrays[1:])
    assert not any(a.flags.writeable for a in arrays)


@pytest.mark.parametrize(("n", "bag_size"), [(2, 20), (4, 20), (4, 1)])
def test_xla_exchanges_one_partial_vector_per_bag_and_device(n, bag_size):
    """Each device receives `batch` partials of the widest device's width from each other
    device; a row exchange would bring every device each row another device holds of every
    pooled value (rows as stored: a rowwise int8 row is its bytes, scale and bias)."""
    pytest.importorskip("jax")
    session = InferenceSession(backend="xla")
    int8 = QuantizationEncoding.ROWWISE_INT8
    bags = [nn.EmbeddingBag(1000, 64, DType.float32, name="f", mode="mean"),
            nn.EmbeddingBag(500, 40, DType.uint8, None, int8, "q", mode="max")]  # fmt: skip
    tables = [np.ones((1000, 64), np.float32), quantized("rowwise_int8", 500, 32, 3)]
    batch = 16
    lengths = np.full((2, batch), bag_size)
    rng = np.random.default_rng(n)
    values = np.concatenate([rng.integers(0, 1000, batch * bag_size),
                             rng.integers(0, 500, batch * bag_size)])  # fmt: skip
    collection = nn.EmbeddingBagCollection(bags, devices=devices(n), sharding="row")
    _, model = pooled(session, collection, tables, values, lengths)
    [exchange] = model._executable._memo.values()
    before = exchange.exchanged_bytes, exchange.row_bytes
    outs = model.execute(values, lengths.astype(np.int32))
    partials = exchange.exchanged_bytes - before[0]
    rows = exchange.row_bytes - before[1]
    assert partials == n * (n - 1) * batch * (64 + 32) * 4
    assert rows == (n - 1) * batch * bag_size * (64 * 4 + 40)
    assert (partials < rows) == (bag_size * (64 * 4 + 40) > n * (64 + 32) * 4)
    np.testing.assert_array_equal(outs[0].to_numpy()[:, :64], 1.0)


def test_bad_shardings_are_clear_errors_at_build_time():
    bags = [nn.EmbeddingBag(3, 4, DType.float32, name="small"),
            nn.EmbeddingBag(10, 4, DType.float32, name="big")]  # fmt: skip
    with pytest.raises(ValueError, match=r"table 'small' has 3 rows, fewer than the 4 devices"):
        nn.EmbeddingBagCollection(bags, devices=devices(4), sharding="row")
    with pytest.raises(ValueError, match=r"sharding must be 'table', 'row' or one entry per bag"):
        nn.EmbeddingBagCollection(bags, devices=devices(2), sharding="column")
    with pytest.raises(ValueError, match=r"sharding must be .* got \['row'\]"):
        nn.EmbeddingBagCollection(bags, devices=devices(2), sharding=["row"])
    with pytest.raises(ValueError, match=r"table 'big' placed on 2; give a device index in"):
        nn.EmbeddingBagCollection(bags, devices=devices(2), sharding=[0, 2])
    with pytest.raises(ValueError, match=r"sharding='row' needs devices"):
        nn.EmbeddingBagCollection(bags, sharding="row")
    with pytest.raises(ValueError, match=r"devices repeat"):
        nn.EmbeddingBagCollection(bags, devices=[DeviceRef.CPU(0)] * 2)
    with pytest.raises(ValueError, match=r"devices is empty; name at least one DeviceRef"):
        nn.EmbeddingBagCollection(bags, devices=[])
    with pytest.raises(ValueError, match=r"devices must be DeviceRefs, got \[0, 1\]"):
        nn.EmbeddingBagCollection(bags, devices=[0, 1])


def test_uneven_splits_leave_no_empty_blocks(session):
    """Five rows over four devices split as VocabParallelEmbedding splits them (2, 2, 1, 0):
    the fourth device holds no block, and still gets the result."""
    table = np.arange(10, dtype=np.float32).reshape(5, 2)
    bag = nn.EmbeddingBag(5, 2, DType.float32, name="t")
    collection = nn.EmbeddingBagCollection([bag], devices=devices(4), sharding="row")
    assert [collection.shard_bounds(0, k) for k in range(4)] == [(0, 2), (2, 4), (4, 5), (5, 5)]
    outs, _ = pooled(session, collection, [table], np.array([0, 4, 2, 3]), np.array([[3, 1]]))
    for out in outs:
        np.testing.assert_array_equal(out.to_numpy(), [table[[0, 4, 2]].sum(0), table[3]])
