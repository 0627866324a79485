"""Ids from a DLPack producer (torch's tensors, jax's arrays, any object with `__dlpack__`) take
the one-lookup fast path, as numpy ids do, and give the same rows."""

from __future__ import annotations

import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.engine.model import _Execution
from ember.errors import OutOfRangeError
from ember.graph import DeviceRef, Graph, TensorType

VOCAB, HIDDEN = 40, 24


class Producer:
    """A DLPack producer that is not a numpy array: it exports a numpy array's memory."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


@pytest.fixture
def table():
    return np.random.default_rng(0).standard_normal((VOCAB, HIDDEN)).astype(np.float32)


def model_of(table, ids_dtype=DType.int32):
    emb = nn.EmbeddingV2(VOCAB, HIDDEN, DType.float32, DeviceRef.CPU(), name="t")
    with Graph("g", input_types=[TensorType(ids_dtype, ["n"])]) as g:
        g.output(emb(g.inputs[0]))
    return InferenceSession(num_threads=2, backend="native").load(g, {"t": table})


@pytest.fixture
def no_general_path(monkeypatch):
    """Makes the general path fail, once the model has checked its ids' shape."""

    def refuse(self, inputs):
        raise AssertionError("the general path ran")

    return lambda: monkeypatch.setattr(_Execution, "_check_inputs", refuse)


def warm(model, n):
    model.execute(np.zeros(n, np.int32))  # the general path accepts the shape


def test_a_dlpack_producer_takes_the_fast_path(table, no_general_path):
    model = model_of(table)
    warm(model, 3)
    no_general_path()
    ids = np.array([5, 0, 39], np.int32)
    np.testing.assert_array_equal(model.execute(Producer(ids))[0].to_numpy(), table[ids])
    out = np.empty((3, HIDDEN), np.float32)
    assert model.execute(Producer(ids[::-1].copy()), out=out)[0].to_numpy() is out
    np.testing.assert_array_equal(out, table[ids[::-1]])


def test_read_only_producers_take_the_fast_path(table, no_general_path):
    jnp = pytest.importorskip("jax.numpy")
    model = model_of(table)
    warm(model, 2)
    no_general_path()
    ids = jnp.array([7, 38], dtype=jnp.int32)  # jax exports read-only memory
    np.testing.assert_array_equal(model.execute(ids)[0].to_numpy(), table[[7, 38]])


def test_producer_ids_keep_every_check(table):
    model = model_of(table)
    warm(model, 2)
    with pytest.raises(OutOfRangeError, match="40"):
        model.execute(Producer(np.array([1, 40], np.int32)))
    out = np.empty((2, HIDDEN), np.float32)
    with pytest.raises(ValueError, match="overlaps input"):
        model.execute(Producer(out.reshape(-1).view(np.int32)[:2]), out=out)
    wide = np.array([3, 4], np.int64)  # another dtype: converted by the general path
    np.testing.assert_array_equal(model.execute(Producer(wide))[0].to_numpy(), table[[3, 4]])


def test_torch_ids_take_the_fast_path(table, no_general_path):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    model = model_of(table)
    warm(model, 3)
    no_general_path()
    ids = torch.tensor([9, 1, 30], dtype=torch.int32)
    np.testing.assert_array_equal(model.execute(ids)[0].to_numpy(), table[[9, 1, 30]])
    out = np.empty((3, HIDDEN), np.float32)
    model.execute(ids, out=out)
    np.testing.assert_array_equal(out, table[[9, 1, 30]])


def test_torch_ids_the_fast_path_cannot_read_still_work(table):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    model = model_of(table)
    warm(model, 3)
    strided = torch.tensor([9, 0, 1, 0, 30, 0], dtype=torch.int32)[::2]
    np.testing.assert_array_equal(model.execute(strided)[0].to_numpy(), table[[9, 1, 30]])
    with pytest.raises(OutOfRangeError):
        model.execute(torch.tensor([0, 1, 99], dtype=torch.int32))
