"""Binding a whole checkpoint (`weights_registry=ember.weights.load(...)`) says nothing about
the tensors the graph does not read; a plain dict with unused names draws one one-line warning
naming them all."""

import warnings

import numpy as np
import pytest
from conftest import write_gguf

import ember.nn as nn
import ember.weights
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import Graph, TensorType

UNUSED = [f"blk.{i}.attn_q.weight" for i in range(40)]


@pytest.fixture
def checkpoint(tmp_path):
    """A GGUF file: a token table and forty tensors a lookup graph does not read."""
    tensors = {"token_embd.weight": np.arange(40, dtype=np.float32).reshape(10, 4)}
    tensors.update((name, np.zeros((4, 4), np.float32)) for name in UNUSED)
    return ember.weights.load(write_gguf(tmp_path / "model.gguf", tensors))


def lookup(weights):
    layer = nn.EmbeddingV2.from_weight(weights["token_embd.weight"])
    with Graph("lookup", input_types=[TensorType(DType.int64, ["n"])]) as graph:
        graph.output(layer(graph.inputs[0]))
    return graph


def load_recording(graph, registry):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = InferenceSession().load(graph, weights_registry=registry)
    return model, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def test_a_whole_checkpoint_binds_without_warnings(checkpoint):
    model, caught = load_recording(lookup(checkpoint), checkpoint)
    assert caught == []
    np.testing.assert_array_equal(
        model.execute(np.array([3, 0]))[0].to_numpy(),
        np.arange(40, dtype=np.float32).reshape(10, 4)[[3, 0]],
    )


def test_a_plain_dict_warns_once_naming_every_unused_entry(checkpoint):
    _, caught = load_recording(lookup(checkpoint), dict(checkpoint))
    [message] = caught
    assert "\n" not in message and all(repr(name) in message for name in UNUSED), message
