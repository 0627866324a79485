"""`ember.weights.load` over real-format files (written with gguf's writer and safetensors):
zero-copy tensors that carry their encoding, layers built from them, lookups equal to numpy and
gguf, and a wrong encoding caught at load."""

from __future__ import annotations

import gguf
import ml_dtypes
import numpy as np
import pytest
from conftest import write_gguf

import ember.nn as nn
import ember.weights
from ember.dtype import DType
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType
from ember.quant import FORMATS, GGUF_FORMATS

pytest.importorskip("safetensors")

ROWS, COLS = 40, 256
IDS = np.array([[0, 39, 7], [7, 12, 1]], np.int64)


def values(seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal((ROWS, COLS)).astype(dtype)


def lookup(session, data, ids=IDS):
    layer = nn.EmbeddingV2.from_weight(data)
    with Graph("g", input_types=[TensorType(DType.int64, ["b", "s"])]) as g:
        g.output(layer(g.inputs[0]))
    return session.load(g, {data.name: data}).execute(ids)[0].to_numpy()


@pytest.mark.parametrize("name", list(GGUF_FORMATS))
def test_quantized_gguf_tables_look_up_bit_exact(session, tmp_path, name, quantized_rows):
    blocks = quantized_rows(name, ROWS, COLS)
    path = write_gguf(tmp_path / "q.gguf", {"token_embd.weight": (name, blocks)})
    data = ember.weights.load(path)["token_embd.weight"]
    assert data.quantization_encoding is QuantizationEncoding[name.upper()]
    assert data.shape == (ROWS, COLS) and data.dtype is DType.uint8
    assert isinstance(data.array.base, np.memmap) or isinstance(data.array, np.memmap)
    got = lookup(session, data)
    kind = gguf.GGMLQuantizationType(FORMATS[name].ggml_type)
    want = gguf.quants.dequantize(np.asarray(data.array)[IDS.reshape(-1)], kind)
    assert got.tobytes() == want.reshape(got.shape).astype(np.float32).tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float16, ml_dtypes.bfloat16])
def test_dense_gguf_tables_look_up_exactly(session, tmp_path, dtype):
    table = values(1, dtype)
    path = write_gguf(tmp_path / "d.gguf", {"token_embd.weight": table})
    data = ember.weights.load(path)["token_embd.weight"]
    assert data.quantization_encoding is None and data.dtype is DType.from_numpy(np.dtype(dtype))
    assert lookup(session, data).tobytes() == table[IDS].tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float16, ml_dtypes.bfloat16])
def test_safetensors_tables_look_up_exactly(session, tmp_path, dtype):
    from safetensors.numpy import save_file

    table = values(2, dtype)
    save_file({"model.embed_tokens.weight": table}, str(tmp_path / "model.safetensors"))
    data = ember.weights.load(tmp_path)["model.embed_tokens.weight"]
    assert lookup(session, data).tobytes() == table[IDS].tobytes()


def test_a_table_bound_under_another_encoding_is_an_error(tmp_path):
    path = write_gguf(tmp_path / "q.gguf", {"t": ("q4_0", FORMATS["q4_0"].quantize(values()))})
    data = ember.weights.load(path)["t"]  # 144 bytes a row of 256: the same as Q4_K
    emb = nn.EmbeddingV2(ROWS, 144, DType.uint8, quantization_encoding=QuantizationEncoding.Q4_K,
                         name="t")  # fmt: skip
    with Graph("g", input_types=[TensorType(DType.int64, ["n"])]) as g:
        g.output(emb(g.inputs[0]))
    from ember.engine import InferenceSession

    with pytest.raises(ValueError, match=r"declared Q4_K blocks.*holds Q4_0 blocks"):
        InferenceSession().load(g, {"t": data})
    dense = nn.EmbeddingV2(ROWS, 144, DType.uint8, name="t")
    with Graph("g2", input_types=[TensorType(DType.int64, ["n"])]) as g2:
        g2.output(dense(g2.inputs[0]))
    with pytest.raises(ValueError, match=r"declared unquantized.*holds Q4_0 blocks"):
        InferenceSession().load(g2, {"t": data})


def test_from_weight_splits_a_quantized_table_over_devices(session, tmp_path):
    blocks = FORMATS["q6_k"].quantize(values(3))
    path = write_gguf(tmp_path / "q.gguf", {"token_embd.weight": ("q6_k", blocks)})
    data = ember.weights.load(path)["token_embd.weight"]
    refs = [DeviceRef.CPU(i) for i in range(3)]
    layer = nn.VocabParallelEmbedding.from_weight(data, refs)
    with Graph("vp", input_types=[TensorType(DType.int64, ["b", "s"])]) as g:
        g.output(*layer(g.inputs[0]))
    want = FORMATS["q6_k"].dequantize(np.asarray(data.array)[IDS])
    for out in session.load(g, {data.name: data}).execute(IDS):
        assert out.to_numpy().tobytes() == want.tobytes()


def test_a_missing_tensor_name_lists_close_ones(tmp_path):
    path = write_gguf(tmp_path / "d.gguf", {"token_embd.weight": values()})
    with pytest.raises(
        KeyError, match=r"no tensor 'token_embd\.weigth'.*close: token_embd\.weight"
    ):
        ember.weights.load(path)["token_embd.weigth"]


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        ember.weights.load(tmp_path / "absent.gguf")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ember.weights.CheckpointError, match="neither a GGUF file nor"):
        ember.weights.load(tmp_path / "notes.txt")
    with pytest.raises(TypeError, match="from_weight takes a checkpoint tensor"):
        nn.EmbeddingV2.from_weight(np.zeros((2, 2)))


def test_a_folder_holding_one_gguf_file_is_that_checkpoint(tmp_path):
    table = values()
    write_gguf(tmp_path / "model.gguf", {"token_embd.weight": table})
    weights = ember.weights.load(tmp_path)
    assert np.array_equal(np.asarray(weights["token_embd.weight"].array), table)
    assert ember.weights.checkpoint_file(tmp_path) == tmp_path / "model.gguf"
    write_gguf(tmp_path / "other.gguf", {"token_embd.weight": table})
    with pytest.raises(ember.weights.CheckpointError, match="several GGUF files"):
        ember.weights.load(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ember.weights.CheckpointError, match="holds no checkpoint"):
        ember.weights.load(empty)
