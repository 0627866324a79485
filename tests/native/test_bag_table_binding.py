"""A bag collection's table addresses are bound per call without writing over an array another
thread's kernel may still be reading: two threads executing one model whose table is an input
once read each other's table (and checked ids against the other's row count)."""

from __future__ import annotations

import threading

import numpy as np

from ember.dtype import DType
from ember.engine import InferenceSession
from ember.engine.backends.native.kernels.bag import FEATURE_TABLE, FEATURE_WIDTH
from ember.engine.backends.native.kernels.bag_collection import BagCollection, TableSpec
from ember.graph import Graph, TensorType, ops


def test_binding_other_tables_leaves_the_array_given_before_as_it_was():
    features = np.zeros((1, FEATURE_WIDTH + 1), np.int64)
    features[0, FEATURE_TABLE], features[0, FEATURE_WIDTH] = 0, 4
    bags = BagCollection([TableSpec.of("float32", None)], features, np.dtype(np.int64))
    first_table, second_table = np.ones((5, 4), np.float32), np.ones((3, 4), np.float32)
    first = bags._bind([first_table])
    before = first.copy()
    second = bags._bind([second_table])
    np.testing.assert_array_equal(first, before)  # a kernel reading `first` is undisturbed
    assert second is not first and second[0, 1] != first[0, 1]
    assert bags._bind([second_table]) is second  # the same tables again: no new array


def test_threads_with_their_own_tables_get_their_own_rows():
    types = [TensorType(DType.float32, ["v", 16]), TensorType(DType.int64, ["n"]),
             TensorType(DType.int64, ["b"])]  # fmt: skip
    with Graph("bags", input_types=types) as g:
        g.output(ops.embedding_bag(*g.inputs, mode="max"))
    model = InferenceSession().load(g)
    ids = np.random.default_rng(0).integers(0, 100, 4000)
    offsets = np.arange(0, 4000, 4)
    wrong = []

    def work(value: float) -> None:
        table = np.full((100, 16), value, np.float32)
        for _ in range(300):
            if (model.execute(table, ids, offsets)[0].to_numpy() != value).any():
                wrong.append(value)
                return

    threads = [threading.Thread(target=work, args=(v,)) for v in (1.0, 2.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
