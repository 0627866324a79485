"""The embedding layers build the right graph values, and reject bad declarations."""

import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType, ops

IDS = TensorType(DType.int32, ["batch", "seq"])


def test_embedding_v2_shape_device_dtype():
    emb = nn.EmbeddingV2(1000, 64, DType.bfloat16, DeviceRef.GPU(), name="tok")
    with Graph("g", input_types=[IDS]) as g:
        out = emb(g.inputs[0])
    assert (out.shape, out.dtype, out.device) == (["batch", "seq", 64], DType.bfloat16, emb.device)
    assert list(emb.raw_state_dict()) == ["tok"]


def test_embedding_spellings():
    table = np.zeros((10, 4), np.float32)
    with Graph("g", input_types=[IDS]) as g:
        assert nn.Embedding(table)(g.inputs[0]).shape == ["batch", "seq", 4]
        later = nn.Embedding(10, 4, DType.float32, DeviceRef.CPU(), name="e")
        assert later(g.inputs[0]).shape == ["batch", "seq", 4]


def test_quantized_layer_outputs_floats():
    row_bytes = QuantizationEncoding.Q4_K.row_bytes(512)
    emb = nn.EmbeddingV2(
        100, row_bytes, DType.uint8, quantization_encoding=QuantizationEncoding.Q4_K
    )
    with Graph("g", input_types=[IDS]) as g:
        out = emb(g.inputs[0])
    assert (out.shape, out.dtype) == (["batch", "seq", 512], DType.float32)


def test_vocab_parallel_returns_one_value_per_device():
    devices = [DeviceRef.CPU(0), DeviceRef.CPU(1), DeviceRef.CPU(2)]
    emb = nn.VocabParallelEmbedding(10, 8, DType.float32, devices=devices)
    assert [emb.shard_bounds(i) for i in range(3)] == [(0, 4), (4, 8), (8, 10)]
    with Graph("g", input_types=[IDS]) as g:
        outs = emb(g.inputs[0])
    assert [o.device for o in outs] == devices
    assert all(o.shape == ["batch", "seq", 8] for o in outs)
    seed_spelling = nn.VocabParallelEmbedding(10, 8, DType.float32, device=devices[:2])
    assert seed_spelling.num_devices == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"vocab_size": 0}, ValueError, "vocab_size must be a positive int, got 0"),
        ({"hidden_dim": -2}, ValueError, "hidden_dim must be a positive int, got -2"),
        ({"dtype": "float32"}, TypeError, "dtype must be a DType"),
        ({"out_of_range": "wrap"}, ValueError, "'wrap' is ops.gather's rule"),
        (
            {"quantization_encoding": QuantizationEncoding.Q4_0},
            TypeError,
            "declared as dtype=DType.uint8",
        ),
        (
            {"dtype": DType.uint8, "hidden_dim": 100,
             "quantization_encoding": QuantizationEncoding.Q4_0},
            ValueError,
            "a row of 100 bytes is not a positive multiple of 18",
        ),
        (
            {"dtype": DType.uint8, "quantization_encoding": QuantizationEncoding.GPTQ},
            ValueError,
            "linear-layer format",
        ),
    ],
)  # fmt: skip
def test_bad_declarations(kwargs, error, message):
    args = {"vocab_size": 10, "hidden_dim": 36, "dtype": DType.float32} | kwargs
    with pytest.raises(error, match=message):
        nn.EmbeddingV2(**args)


def test_float_ids_are_rejected_at_build_time():
    emb = nn.EmbeddingV2(10, 4, DType.float32)
    with Graph("g", input_types=[TensorType(DType.float32, [3])]) as g:
        with pytest.raises(TypeError, match="integer dtype, got float32"):
            emb(g.inputs[0])
        with pytest.raises(TypeError, match="integer dtype, got float64"):
            emb(ops.constant(np.array([1.0, 2.0])))


def test_module_state_dict_checks():
    emb = nn.EmbeddingV2(10, 4, DType.float32, name="e")
    emb.load_state_dict({"e": np.zeros((10, 4), np.float32)})
    assert emb.state_dict()["e"].shape == (10, 4)
    with pytest.raises(ValueError, match=r"expected shape \(10, 4\), got \(10, 5\)"):
        emb.load_state_dict({"e": np.zeros((10, 5), np.float32)})
    with pytest.raises(TypeError, match="expected dtype float32, got float16"):
        emb.load_state_dict({"e": np.zeros((10, 4), np.float16)})
    with pytest.raises(KeyError, match="no array for weights"):
        emb.load_state_dict({})
    with pytest.raises(KeyError, match="match no weight"):
        emb.load_state_dict({"e": np.zeros((10, 4), np.float32), "x": np.zeros(1)})


def test_parallel_devices_must_be_a_list():
    with pytest.raises(TypeError, match="devices must be a list of DeviceRefs, got 2"):
        nn.VocabParallelEmbedding(10, 4, DType.float32, 2)


def test_a_quantized_width_may_be_given_in_values_as_maxs_layers_give_it():
    q4k = QuantizationEncoding.Q4_K
    by_values = nn.EmbeddingV2(8, 2048, DType.uint8, quantization_encoding=q4k)
    assert by_values.hidden_dim == 1152 and by_values.weight.shape[-1] == 1152
    assert nn.EmbeddingV2(8, 2304, DType.uint8, quantization_encoding=q4k).hidden_dim == 2304
    linear = nn.Linear(2048, 4, DType.uint8, quantization_encoding=QuantizationEncoding.Q8_0)
    assert linear.weight.shape[-1] == 2176  # 64 blocks of 34 bytes
    bag = nn.EmbeddingBag(8, 256, DType.uint8, quantization_encoding=QuantizationEncoding.Q6_K)
    assert bag.hidden_dim == 210
    with pytest.raises(ValueError, match="a row of 100 bytes is not a positive multiple of 144"):
        nn.EmbeddingV2(8, 100, DType.uint8, quantization_encoding=q4k)


def test_a_width_read_as_bytes_says_how_to_declare_its_values(session):
    q4k = QuantizationEncoding.Q4_K
    layer = nn.EmbeddingV2(2, 2304, DType.uint8, quantization_encoding=q4k)  # bytes: 4096 values
    with Graph("g", input_types=[TensorType(DType.int64, [1])]) as g:
        g.output(layer(g.inputs[0]))
    blocks = np.zeros((2, 1296), np.uint8)  # 2304 values of Q4_K
    with pytest.raises(ValueError, match=r"2304 was read as bytes.*declare 1296 bytes"):
        session.load(g, {"weight": blocks})
