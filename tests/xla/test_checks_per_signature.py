"""A model's jitted segments keep one trace per input signature, and a trace's shapes may decide
which checks it makes (an empty batch has no ids to check): each signature's checks are read
back with that signature's trace, in any order of calls."""

from __future__ import annotations

import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.errors import OutOfRangeError
from ember.graph import DeviceRef, Graph, TensorType

CPU = DeviceRef.CPU()
TABLE = {"t": np.arange(40, dtype=np.float32).reshape(10, 4)}


def test_a_bag_alternating_empty_and_full_batches():
    bag = nn.EmbeddingBag(10, 4, DType.float32, name="t")
    types = [TensorType(DType.int64, ["n"], CPU), TensorType(DType.int64, ["bags"], CPU)]
    with Graph("bag", input_types=types) as g:
        g.output(bag(*g.inputs))
    model = InferenceSession(backend="xla").load(g, weights_registry=TABLE)
    full = (np.array([1, 2], np.int64), np.array([0], np.int64))
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    for ids, offsets in (full, empty, full, empty):
        [got] = model.execute(ids, offsets)
        want = TABLE["t"][ids].sum(0, keepdims=True) if len(offsets) else np.zeros((0, 4))
        np.testing.assert_array_equal(got.to_numpy(), want)
    with pytest.raises(OutOfRangeError, match="10"):  # the full trace's check still raises
        model.execute(np.array([1, 10], np.int64), np.array([0], np.int64))


def test_a_collection_alternating_no_values_and_some():
    collection = nn.EmbeddingBagCollection([nn.EmbeddingBag(10, 4, DType.float32, name="t")])
    types = [TensorType(DType.int64, ["n"], CPU), TensorType(DType.int64, [1, "batch"], CPU)]
    with Graph("collection", input_types=types) as g:
        g.output(collection(*g.inputs))
    model = InferenceSession(backend="xla").load(g, weights_registry=TABLE)
    some = (np.array([3], np.int64), np.array([[1]], np.int64))
    none = (np.zeros(0, np.int64), np.zeros((1, 2), np.int64))
    for values, lengths in (some, none, some, none):
        [got] = model.execute(values, lengths)
        want = TABLE["t"][values].reshape(-1, 4) if len(values) else np.zeros((2, 4))
        np.testing.assert_array_equal(got.to_numpy(), want)
