"""Max pooling over rows holding NaN and signed zeros, as IEEE 754-2019's `maximum` orders
them, whatever the rows' order: a NaN in any pooled row makes that column NaN, wherever it
stands in the bag (as numpy's and torch's max reductions do; torch's `embedding_bag` keeps a NaN
only where it comes first in the bag), and +0 is above -0 (XLA's order; torch's `embedding_bag`
keeps the zero that comes first, numpy's max the one it meets last). The same bits on every
path: the native kernels, the numpy path that serves while they compile, XLA, and collections
sharded by rows."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.engine.backends.native.kernels import background
from ember.graph import DeviceRef, Graph, TensorType

IDS = np.array([0, 2, 2, 0, 1, 3, 4, 5, 4, 1, 3, 3], np.int64)
OFFSETS = np.array([0, 2, 4, 6, 7, 7], np.int64)  # [0 2] [2 0] [1 3] [4] [] [5 4 1 3 3]


def table_of(dtype):
    table = np.arange(24, dtype=np.float32).reshape(6, 4) - 10
    table[2, 0] = np.nan  # in bags where it comes second and first
    table[4, 1] = np.nan
    table[4, 2] = -np.inf
    table[3, 3] = np.nan  # twice in the last bag
    table[0, 1], table[2, 1] = -0.0, 0.0  # -0 then +0 in a bag, and +0 then -0
    table[1, 2], table[3, 2] = -0.0, -4.0  # -0 alone at the top
    return table.astype(dtype)


def reference(table):
    """float64 maxima per bag, NaN wherever a pooled row has NaN, +0 wherever the greatest is
    zero and a pooled row has +0; empty bags zero."""
    rows = table.astype(np.float64)
    ends = np.append(OFFSETS[1:], IDS.size)
    maxima = []
    for s, e in zip(OFFSETS, ends, strict=True):
        bag = rows[IDS[s:e]]
        if e == s:
            maxima.append(np.zeros(4))
            continue
        best = bag.max(axis=0)
        best[(best == 0) & ((bag == 0) & ~np.signbit(bag)).any(axis=0)] = 0.0
        maxima.append(best)
    return np.array(maxima)


def assert_same_maxima(got, table):
    want = reference(table)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    fine = ~np.isnan(want)
    np.testing.assert_array_equal(got.astype(np.float64)[fine], want[fine])
    np.testing.assert_array_equal(np.signbit(got)[fine], np.signbit(want)[fine])


def bag_model(session, dtype):
    bag = nn.EmbeddingBag(6, 4, DType.from_numpy(np.dtype(dtype)), name="t", mode="max")
    types = [TensorType(DType.int64, ["n"]), TensorType(DType.int64, ["bags"])]
    with Graph("max", input_types=types) as g:
        g.output(bag(*g.inputs))
    return session.load(g, {"t": table_of(dtype)})


DTYPES = [np.float32, ml_dtypes.bfloat16, np.float16]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_nan_anywhere_gives_nan_and_positive_zero_beats_negative(session, dtype):
    [out] = bag_model(session, dtype).execute(IDS, OFFSETS)
    assert_same_maxima(out.to_numpy(), table_of(dtype))
    assert np.isnan(out.to_numpy()[0, 0]) and np.isnan(out.to_numpy()[1, 0])  # second, first
    assert not np.signbit(out.to_numpy()[:2, 1]).any()  # +0 after -0, and before it
    assert np.signbit(out.to_numpy()[2, 2])  # -0 the greatest, alone


class NeverReady(background.Kernel):
    """A kernel whose compile never starts: bags stay on the numpy path."""

    def request(self) -> bool:
        return False


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_the_numpy_path_gives_the_kernels_bits(monkeypatch, dtype):
    session = InferenceSession(num_threads=2, backend="native")
    [compiled] = bag_model(session, dtype).execute(IDS, OFFSETS)
    monkeypatch.setattr(background, "kernel", lambda key, name, warm: NeverReady(name, warm))
    [fallback] = bag_model(session, dtype).execute(IDS, OFFSETS)
    assert compiled.to_numpy().tobytes() == fallback.to_numpy().tobytes()


def collection_graph(bag, devices):
    """A collection of `bag` alone, whole on one device or split by rows over `devices`."""
    places = None if devices is None else [DeviceRef.CPU(i) for i in range(devices)]
    collection = nn.EmbeddingBagCollection(
        [bag], devices=places, sharding="row" if places else "table"
    )
    types = [TensorType(DType.int64, ["n"]), TensorType(DType.int64, [1, "batch"])]
    with Graph("max", input_types=types) as g:
        out = collection(*g.inputs)
        g.output(*(out if isinstance(out, list) else [out]))
    return g


@pytest.mark.parametrize("devices", [None, 2, 3], ids=["one device", "2 rows", "3 rows"])
def test_collections_sharded_by_rows_give_the_unsharded_bits(session, devices):
    """Bags split over devices by rows: each device's partial maxima, then their maximum."""
    bag = nn.EmbeddingBag(6, 4, DType.float32, name="t", mode="max")
    lengths = np.diff(np.append(OFFSETS, IDS.size))[None, :]
    outs = session.load(collection_graph(bag, devices), {"t": table_of(np.float32)}).execute(
        IDS, lengths
    )
    for out in outs:
        assert_same_maxima(out.to_numpy(), table_of(np.float32))


@pytest.mark.parametrize("devices", [None, 2], ids=["one device", "2 rows"])
def test_subnormal_rows_keep_their_bits(session, devices):
    """XLA's CPU code flushes float32 subnormals to zero in arithmetic; maxima compare bits."""
    table = np.full((6, 4), 1e-40, np.float32)
    table[1] = -3e-41
    table[2, :2] = [2e-45, -0.0]
    table[3] = np.float32(1.1754942e-38)  # the largest subnormal
    ids, offsets = np.array([1, 1, 2, 1, 0, 3], np.int64), np.array([0, 2, 4], np.int64)
    want = np.stack([table[[1, 1]].max(0), table[[2, 1]].max(0), table[[0, 3]].max(0)])
    bag = nn.EmbeddingBag(6, 4, DType.float32, name="t", mode="max")
    types = [TensorType(DType.int64, ["n"]), TensorType(DType.int64, ["bags"])]
    with Graph("max", input_types=types) as bag_graph:
        bag_graph.output(bag(*bag_graph.inputs))
    [single] = session.load(bag_graph, {"t": table}).execute(ids, offsets)
    lengths = np.diff(np.append(offsets, ids.size))[None, :]
    pooled = session.load(collection_graph(bag, devices), {"t": table}).execute(ids, lengths)
    for got in [single, *pooled]:
        np.testing.assert_array_equal(got.to_numpy().view(np.uint32), want.view(np.uint32))
