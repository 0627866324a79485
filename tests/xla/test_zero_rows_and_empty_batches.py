"""What peers' test suites check of embedding layers, on XLA as on native: rows zeroed by
``out_of_range="zero"`` are +0.0 in every format, sharded or not, and a sharded head's greedy
and top-k modes take an empty batch."""

from __future__ import annotations

import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType
from ember.quant import FORMATS
from ember.quant.samples import sample_table

TWO = [DeviceRef.CPU(0), DeviceRef.CPU(1)]


@pytest.mark.parametrize("devices", [None, TWO], ids=["one device", "two devices"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_rows_zeroed_by_the_policy_are_positive_zero_on_both_backends(fmt, devices):
    """Zero bytes decode to -0.0 in several formats (Q4_0's ``d * (q - 8)``, ``d = 0``)."""
    encoding = QuantizationEncoding[fmt.upper()]
    table = sample_table(fmt, 4, FORMATS[fmt].block_elements, seed=1)
    options = dict(quantization_encoding=encoding, name="t", out_of_range="zero")
    if devices is None:
        layer = nn.EmbeddingV2(4, table.shape[1], DType.uint8, **options)
    else:
        layer = nn.VocabParallelEmbedding(4, table.shape[1], DType.uint8, devices, **options)
    with Graph("zero", input_types=[TensorType(DType.int64, ["n"])]) as g:
        out = layer(g.inputs[0])
        g.output(*(out if isinstance(out, list) else [out]))
    ids = np.array([-1, 4, 2, 9], np.int64)
    results = {}
    for backend in ("native", "xla"):
        model = InferenceSession(backend=backend).load(g, {"t": table})
        results[backend] = model.execute(ids)[0].to_numpy()
        zeroed = results[backend][[0, 1, 3]]
        assert (zeroed == 0).all() and not np.signbit(zeroed).any(), backend
    np.testing.assert_array_equal(results["xla"].view(np.uint32), results["native"].view(np.uint32))


@pytest.mark.parametrize("backend", ["native", "xla"])
@pytest.mark.parametrize(("output", "k"), [("argmax", None), ("top_k", 2)])
def test_a_sharded_head_takes_an_empty_batch(backend, output, k):
    layer = nn.VocabParallelEmbedding(10, 3, DType.float32, TWO, name="t")
    with Graph("head", input_types=[TensorType(DType.float32, ["b", 3])]) as g:
        per_device = nn.LMHead(layer, output=output, k=k)(g.inputs[0])
        g.output(*(v for r in per_device for v in (r if isinstance(r, tuple) else [r])))
    model = InferenceSession(backend=backend).load(g, {"t": np.ones((10, 3), np.float32)})
    results = [t.to_numpy() for t in model.execute(np.zeros((0, 3), np.float32))]
    want = [(0,)] * 2 if output == "argmax" else [(0, 2)] * 4
    assert [r.shape for r in results] == want
