"""MAX's `masked_scatter` on every backend, against numpy's boolean assignment: MAX's own
cases, a vision-language model's image features put into its token embeddings (a quantized
table's rows among them), random masks that broadcast, and every count that does not fit."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType
from gguf.quants import dequantize as gguf_dequantize

from ember import nn
from ember.dtype import DType
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType, ops
from ember.graph.errors import GraphTypeError
from ember.quant import FORMATS
from ember.quant.samples import sample_table

CPU = DeviceRef.CPU()


@pytest.mark.parametrize(
    ("values", "mask", "updates", "want"),
    [
        ([[0] * 5] * 2, [[0, 0, 0, 1, 1], [1, 1, 0, 1, 1]], [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]],
         [[0, 0, 0, 1, 2], [3, 4, 0, 5, 6]]),
        ([[0] * 5] * 2, [0, 0, 1, 1, 1], [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]],
         [[0, 0, 1, 2, 3], [0, 0, 4, 5, 6]]),
        ([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]], [[0, 0, 0, 1, 1], [1, 1, 0, 1, 1]], [0] * 10,
         [[1, 2, 3, 0, 0], [0, 0, 8, 0, 0]]),
        ([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]], [[0, 0, 0, 1, 1], [1, 1, 0, 1, 1]], [2],
         [[1, 2, 3, 2, 2], [2, 2, 8, 2, 2]]),
    ],
)  # fmt: skip
def test_max_s_cases(session, values, mask, updates, want):
    """MAX's tests: updates taken in order, a broadcast mask, extra updates left over, and a
    single update filling every true place."""
    with Graph("masked_scatter", input_types=[]) as g:
        g.output(
            ops.masked_scatter(
                ops.constant(values, DType.int32, device=CPU),
                ops.constant(mask, DType.bool, device=CPU),
                ops.constant(updates, DType.int32, device=CPU),
                out_dim="masked",
            )
        )
    assert session.load(g).execute()[0].to_numpy().tolist() == want


@pytest.mark.parametrize("encoding", [None, "q8_0"])
def test_image_features_replace_the_image_tokens_embeddings(session, encoding):
    """As a vision-language model merges: `embeds[ids == image_token] = features`, the count
    checked against the features' rows at every execution."""
    rng = np.random.default_rng(0)
    vocab, hidden, image_token = 50, 32, 7
    if encoding is None:
        table = rng.standard_normal((vocab, hidden)).astype(np.float32)
        layer, stored = nn.EmbeddingV2(vocab, hidden, DType.float32, name="embed"), table
    else:
        stored = sample_table(encoding, vocab, hidden, seed=1)
        quantized = QuantizationEncoding[encoding.upper()]
        layer = nn.EmbeddingV2(vocab, stored.shape[1], DType.uint8, None, quantized, "embed")
        table = gguf_dequantize(stored, GGMLQuantizationType(FORMATS[encoding].ggml_type))
    types = [TensorType(DType.int64, ["seq"]), TensorType(DType.float32, ["image", hidden])]
    with Graph("merge", input_types=types) as g:
        ids, features = g.inputs
        is_image = ops.unsqueeze(ids == ops.constant(image_token, DType.int64, CPU), -1)
        count = features.shape[0] * hidden
        g.output(ops.masked_scatter(layer(ids), is_image, features, out_dim=count))
    model = session.load(g, {"embed": stored})
    ids = np.array([1, 7, 7, 7, 3, 9, 7, 2], np.int64)
    features = rng.standard_normal((4, hidden)).astype(np.float32)
    want = table[ids]
    want[ids == image_token] = features
    np.testing.assert_array_equal(model.execute(ids, features)[0].to_numpy(), want)
    text_only = np.array([1, 2, 3], np.int64)
    got = model.execute(text_only, np.zeros((0, hidden), np.float32))[0].to_numpy()
    np.testing.assert_array_equal(got, table[text_only])
    with pytest.raises(ValueError, match="the mask has 128 true places, and out_dim is 96"):
        model.execute(ids, features[:3])
    np.testing.assert_array_equal(model.execute(ids, features)[0].to_numpy(), want)


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.bool_])
def test_random_masks_that_broadcast(session, dtype):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((3, 4, 5)) * 10).astype(dtype)
    mask = rng.random((4, 1)) < 0.5
    updates = (rng.standard_normal((7, 9)) * 10).astype(dtype)
    types = [TensorType(DType.from_numpy(x.dtype), [3, 4, 5]), TensorType(DType.bool, [4, 1]),
             TensorType(DType.from_numpy(x.dtype), [7, 9])]  # fmt: skip
    with Graph("random", input_types=types) as g:
        g.output(ops.masked_scatter(*g.inputs, out_dim="n"))
    want = x.copy()
    full = np.broadcast_to(mask, x.shape)
    want[full] = updates.reshape(-1)[: full.sum()]
    np.testing.assert_array_equal(session.load(g).execute(x, mask, updates)[0].to_numpy(), want)


def test_too_few_updates_and_no_true_place(session):
    types = [TensorType(DType.float32, [6]), TensorType(DType.bool, [6]),
             TensorType(DType.float32, ["k"])]  # fmt: skip
    with Graph("few", input_types=types) as g:
        g.output(ops.masked_scatter(*g.inputs, out_dim="n"))
    model = session.load(g)
    x = np.arange(6, dtype=np.float32)
    mask = np.array([1, 0, 1, 1, 0, 1], bool)
    with pytest.raises(ValueError, match="4 true places, and the updates hold 3 elements"):
        model.execute(x, mask, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="4 true places, and the updates hold 0 elements"):
        model.execute(x, mask, np.ones(0, np.float32))
    none = np.zeros(6, bool)
    np.testing.assert_array_equal(model.execute(x, none, np.ones(0, np.float32))[0].to_numpy(), x)
    want = np.array([9, 1, 8, 7, 4, 6], np.float32)
    got = model.execute(x, mask, np.array([9, 8, 7, 6, 5], np.float32))[0].to_numpy()
    np.testing.assert_array_equal(got, want)


def test_errors_at_build():
    types = [TensorType(DType.float32, [2, 3]), TensorType(DType.bool, [2, 3]),
             TensorType(DType.int32, [6]), TensorType(DType.bool, [4])]  # fmt: skip
    with Graph("e", input_types=types) as g:
        x, mask, ints, wide = g.inputs
        with pytest.raises(GraphTypeError, match="must match"):
            ops.masked_scatter(x, mask, ints, out_dim=6)
        with pytest.raises(GraphTypeError, match="mask must be bool"):
            ops.masked_scatter(x, ints.reshape([2, 3]), x, out_dim=6)
        with pytest.raises(ValueError, match="broadcast"):
            ops.masked_scatter(x, wide, x, out_dim=6)
