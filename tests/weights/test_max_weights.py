"""MAX's `max.graph.weights` at `ember.graph.weights`: MAX's own loading tests with the imports
renamed (`test_load_gguf`, `test_load_safetensors`), then what MAX leaves unsaid: every block
format, names under a prefix, the checks `allocate` makes, and `WeightData` in MAX's order."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from pathlib import Path

import gguf
import ml_dtypes
import numpy as np
import pytest
from conftest import write_gguf

from ember.driver import CPU, Buffer
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType, Weight, ops
from ember.graph.weights import (
    GGUFWeights,
    SafetensorWeights,
    WeightData,
    Weights,
    WeightsFormat,
    load_weights,
    weights_format,
)
from ember.quant import FORMATS, GGUF_FORMATS
from ember.weights import CheckpointError

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def _test_data() -> dict[str, np.ndarray]:
    """MAX's test data (its bfloat16 tensor as ml_dtypes' rather than torch's)."""
    return {
        "a": np.arange(10, dtype=np.int32).reshape(5, 2),
        "b": np.full((1, 2, 3), 3.5, dtype=np.float64),
        "c": np.array(5432.1, dtype=np.float32),
        "fancy/name": np.array([1, 2, 3], dtype=np.int64),
        "bf16": np.array([123, 45], dtype=ml_dtypes.bfloat16),
    }


def test_load_gguf(session: InferenceSession, tmp_path: Path) -> None:
    expected_dict = _test_data()
    expected_dict["quantized"] = np.arange(0, 288, dtype=np.uint8).reshape(2, 144)
    tensors = {k: v for k, v in expected_dict.items() if k != "quantized"}
    path = write_gguf(
        tmp_path / "example_data.gguf",
        tensors | {"quantized": ("q4_k", expected_dict["quantized"])},
    )
    flat_keys = list(expected_dict.keys())

    weights = GGUFWeights(path)
    with Graph("graph_with_gguf_weights") as graph:
        loaded = {k: graph.add_weight(w.allocate()) for k, w in weights.items()}
        graph.output(*[loaded[k].to(DeviceRef.CPU()) for k in flat_keys])
        compiled = session.load(graph, weights_registry=weights.allocated_weights)
        output = compiled.execute()

    assert len(output) == len(flat_keys)
    for key, actual in zip(flat_keys, output, strict=True):
        assert isinstance(actual, Buffer)
        got = actual.to_numpy()
        assert got.dtype == expected_dict[key].dtype, key
        np.testing.assert_array_equal(got, expected_dict[key])


def test_load_safetensors(session: InferenceSession, tmp_path: Path) -> None:
    expected_base_dict = _test_data()
    for i in range(1, 3):
        safetensors_numpy.save_file(
            {f"{i}.{k}": v for k, v in expected_base_dict.items()},
            str(tmp_path / f"example_data_{i}.safetensors"),
        )
    expected_dict = {f"{i}.{k}": v for k, v in expected_base_dict.items() for i in range(1, 3)}
    flat_keys = list(expected_dict.keys())

    weights = SafetensorWeights([tmp_path / f"example_data_{i}.safetensors" for i in range(1, 3)])
    with Graph("graph_with_pt_weights") as graph:
        loaded = {k: graph.add_weight(w.allocate()) for k, w in weights.items()}
        graph.output(*[loaded[k].to(DeviceRef.CPU()) for k in flat_keys])
        compiled = session.load(
            graph,
            weights_registry={
                k: Buffer.from_dlpack(v) for k, v in weights.allocated_weights.items()
            },
        )
        output = compiled.execute()

    for key, actual in zip(flat_keys, output, strict=True):
        got = actual.to_numpy()
        assert got.dtype == expected_dict[key].dtype, key
        np.testing.assert_array_equal(got, expected_dict[key])


@pytest.mark.parametrize("name", list(GGUF_FORMATS))
def test_every_block_format_allocates_and_looks_up_as_gguf_decodes_it(
    session, tmp_path, name, quantized_rows
):
    blocks = quantized_rows(name, 12, 256)
    weights = GGUFWeights(write_gguf(tmp_path / "q.gguf", {"token_embd.weight": (name, blocks)}))
    table = weights.token_embd.weight
    data = table.data()
    assert data.shape == (12, 256) and data.data.shape == blocks.shape
    assert isinstance(data.data, Buffer) and data.data.to_numpy() is data.array
    assert not data.array.flags.owndata and not data.array.flags.writeable  # maps the file
    ids = np.array([11, 0, 5, 5], np.int64)
    with Graph("g", input_types=[TensorType(DType.int64, [4], DeviceRef.CPU())]) as g:
        weight = table.allocate(DType.uint8, (12, 256), data.quantization_encoding)
        assert weight.quantization_encoding is data.quantization_encoding
        assert tuple(int(d) for d in weight.shape) == blocks.shape
        rows = ops.gather(g.add_weight(weight), g.inputs[0], axis=0)
        g.output(ops.dequantize(weight.quantization_encoding, rows))
    got = session.load(g, weights_registry=weights.allocated_weights).execute(ids)[0].to_numpy()
    kind = gguf.GGMLQuantizationType(FORMATS[name].ggml_type)
    want = gguf.quants.dequantize(blocks, kind)[ids].astype(np.float32)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def test_the_recorded_tensor_carries_its_encoding_into_load(tmp_path):
    blocks = np.zeros((4, 144), np.uint8)
    weights = GGUFWeights(write_gguf(tmp_path / "q.gguf", {"t": ("q4_k", blocks)}))
    weights.t.allocate()
    with Graph("g") as g:  # Q4_0's rows of 256 values also take 144 bytes
        g.output(g.add_weight(Weight("t", DType.uint8, (4, 144), None, QuantizationEncoding.Q4_0)))
    with pytest.raises(ValueError, match=r"declared Q4_0 blocks.*holds Q4_K blocks"):
        InferenceSession(devices=[CPU()]).load(g, weights_registry=weights.allocated_weights)


@pytest.fixture
def tree(tmp_path) -> GGUFWeights:
    tensors = {
        "blk.1.w": np.ones((2, 3), np.float32),
        "blk.10.w": np.zeros((2, 3), np.float32),
        "blk.1.data": np.zeros(2, np.float32),
        "out": np.zeros(4, np.int32),
    }
    return GGUFWeights(write_gguf(tmp_path / "t.gguf", tensors))


def test_names_build_by_attribute_and_index(tree):
    assert isinstance(tree, Weights)
    assert tree.blk[1].w.name == "blk.1.w" and tree["blk"]["1"].w.name == "blk.1.w"
    assert tree.blk[np.int64(10)].w.exists() and not tree.blk[1].exists()
    assert tree.blk[1]["data"].exists()  # a segment named as a method is reached by index
    np.testing.assert_array_equal(tree.blk[1].w.data().array, np.ones((2, 3), np.float32))


def test_items_lists_the_names_at_or_under_a_prefix_only(tree):
    assert [name for name, _ in tree.blk[1].items()] == ["blk.1.w", "blk.1.data"]
    assert [name for name, _ in tree.items()] == ["blk.1.w", "blk.10.w", "blk.1.data", "out"]
    assert [w.name for _, w in tree.out.items()] == ["out"]


def test_children_share_one_record_of_allocated_tensors(tree):
    tree.blk[1].w.allocate()
    tree.out.allocate(DType.int32, [4])
    assert list(tree.allocated_weights) == ["blk.1.w", "out"]
    assert tree.blk.allocated_weights is tree.allocated_weights
    assert tree.allocated_weights["out"].dtype is DType.int32


def test_allocate_checks_what_it_is_given(tree):
    with pytest.raises(ValueError, match=r"'blk.1.w' had different shape \(expected=\(3, 2\)"):
        tree.blk[1].w.allocate(shape=(3, 2))
    with pytest.raises(ValueError, match="had different dtype"):
        tree.blk[1].w.allocate(DType.float16)
    with pytest.raises(ValueError, match="Expected quantized weight"):
        tree.blk[1].w.allocate(quantization_encoding=QuantizationEncoding.Q4_K)
    with pytest.raises(KeyError, match=r"no tensor 'blk.2.w'.*close: blk.1.w"):
        tree.blk[2].w.allocate()
    assert tree.allocated_weights == {}  # nothing recorded by a refused allocate


def test_index_and_probe_errors(tree):
    with pytest.raises(TypeError, match="indexed by an int or a str"):
        tree[1.5]
    assert not hasattr(tree, "__array__")  # probes get no child
    assert copy.deepcopy(tree.blk).name == "blk"
    assert pickle.loads(pickle.dumps(tree.out)).data().array.tolist() == [0, 0, 0, 0]


def test_allocate_as_bytes_views_a_tensors_bytes(session, tmp_path):
    values = {"m": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.array(2.5, np.float32)}
    safetensors_numpy.save_file(values, str(tmp_path / "m.safetensors"))
    weights = SafetensorWeights(tmp_path / "m.safetensors")
    with Graph("g") as g:
        m = weights.m.allocate_as_bytes(DType.float32)
        s = weights.s.allocate_as_bytes()
        assert m.dtype is DType.uint8 and tuple(int(d) for d in m.shape) == (2, 12)
        assert tuple(int(d) for d in s.shape) == (4,)
        g.output(g.add_weight(m), g.add_weight(s))
    got = session.load(g, weights_registry=weights.allocated_weights).execute()
    assert got[0].to_numpy().tobytes() == values["m"].tobytes()
    assert got[1].to_numpy().tobytes() == values["s"].tobytes()
    with pytest.raises(ValueError, match="had different dtype"):
        weights.m.allocate_as_bytes(DType.int32)


def test_safetensors_refuse_an_encoding_and_a_name_in_two_files(tmp_path):
    safetensors_numpy.save_file({"x": np.zeros(2, np.float32)}, str(tmp_path / "1.safetensors"))
    safetensors_numpy.save_file({"x": np.ones(2, np.float32)}, str(tmp_path / "2.safetensors"))
    weights = SafetensorWeights([tmp_path / "1.safetensors"])
    with pytest.raises(ValueError, match="Quantization encodings are not supported"):
        weights.x.allocate(quantization_encoding=QuantizationEncoding.Q8_0)
    with pytest.raises(CheckpointError, match="also in"):
        SafetensorWeights([tmp_path / "1.safetensors", tmp_path / "2.safetensors"])
    with pytest.raises(CheckpointError, match="empty"):
        SafetensorWeights([])


def test_gguf_weights_take_a_gguf_reader_too(tree, tmp_path):
    path = write_gguf(tmp_path / "r.gguf", {"w": np.arange(4, dtype=np.float32)})
    weights = GGUFWeights(gguf.GGUFReader(path))
    np.testing.assert_array_equal(weights.w.data().array, np.arange(4, dtype=np.float32))
    with pytest.raises(TypeError, match=r"path or a gguf.GGUFReader"):
        GGUFWeights(42)
    with pytest.raises(FileNotFoundError):
        GGUFWeights(tmp_path / "none.gguf")


def test_load_weights_and_weights_format(tmp_path):
    path = write_gguf(tmp_path / "w.gguf", {"w": np.zeros(2, np.float32)})
    safetensors_numpy.save_file({"x": np.zeros(2, np.float32)}, str(tmp_path / "x.safetensors"))
    assert isinstance(load_weights([path]), GGUFWeights)
    assert isinstance(load_weights(str(path)), GGUFWeights)  # one path alone
    assert isinstance(load_weights([tmp_path / "x.safetensors"]), SafetensorWeights)
    assert weights_format([Path("a.gguf")]) is WeightsFormat.gguf
    assert weights_format(["a.safetensors", "b.safetensors"]) == "safetensors"
    with pytest.raises(ValueError, match="no paths provided"):
        load_weights([])
    with pytest.raises(ValueError, match="does not exist"):
        load_weights([tmp_path / "none.gguf"])
    with pytest.raises(ValueError, match="multiple gguf"):
        load_weights([path, path])
    with pytest.raises(ValueError, match="cannot be inferred"):
        weights_format([Path("a.gguf"), Path("b.safetensors")])
    with pytest.raises(ValueError, match="no weight_paths"):
        weights_format([])


def test_weight_data_takes_maxs_order_and_ember_s_earlier_one():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    ours = WeightData(array, "w", DType.float32, (2, 3))
    earlier = WeightData("w", array, DType.float32, (2, 3))
    by_keyword = WeightData(data=array, name="w", dtype=DType.float32, shape=[2, 3])
    for data in (ours, earlier, by_keyword):
        assert data.name == "w" and data.array is array
        assert data.shape == (2, 3)
    assert WeightData.from_numpy(array, "w").dtype is DType.float32
    with pytest.raises(ValueError, match="is not its array's"):
        WeightData(array, "w", DType.float32, (3, 2))
    with pytest.raises(TypeError, match="numpy array or a DLPack array"):
        WeightData([1, 2], "w", DType.float32, (2,))


def test_a_quantized_weight_data_keeps_its_values_shape_given_bytes_or_values():
    blocks = np.zeros((3, 34 * 2), np.uint8)  # Q8_0: 64 values in 68 bytes a row
    for shape in ((3, 68), (3, 64)):
        data = WeightData(blocks, "t", DType.uint8, shape, QuantizationEncoding.Q8_0)
        assert data.shape == (3, 64)
    with pytest.raises(ValueError, match=r"neither its Q8_0 array's bytes \(3, 68\)"):
        WeightData(blocks, "t", DType.uint8, (3, 100), QuantizationEncoding.Q8_0)
    with pytest.raises(TypeError, match="do not convert"):
        WeightData(blocks, "t", DType.uint8, (3, 64), QuantizationEncoding.Q8_0).astype(
            DType.float32
        )


def test_weight_data_converts_and_shares_by_dlpack():
    torch = pytest.importorskip("torch")
    array = np.array([1.5, -2.25, 3.0], np.float32)
    data = WeightData.from_numpy(array, "w")
    assert data.astype(DType.float32) is data
    half = data.astype(DType.bfloat16)
    assert half.dtype is DType.bfloat16 and half.array.dtype == ml_dtypes.bfloat16
    assert torch.equal(torch.from_dlpack(half), torch.tensor([1.5, -2.25, 3.0]).bfloat16())
    shared = torch.from_dlpack(data)
    assert shared.data_ptr() == array.ctypes.data
    assert np.shares_memory(data.to_buffer().to_numpy(), array)
    from_torch = WeightData(torch.arange(4, dtype=torch.int64), "t", DType.int64, (4,))
    np.testing.assert_array_equal(from_torch.array, np.arange(4))


def test_a_weights_align_is_checked_at_load(session):
    raw = np.zeros(64 + 64, np.uint8)
    start = -raw.ctypes.data % 16  # the first 16-byte boundary in raw
    aligned = raw[start : start + 64].view(np.float32)
    misaligned = raw[start + 4 : start + 68].view(np.float32)
    with Graph("g") as g:
        g.output(g.add_weight(Weight("w", DType.float32, (16,), None, None, align=16)))
    with pytest.raises(ValueError, match=r"align=16.*starts 4 bytes past"):
        session.load(g, weights_registry={"w": misaligned})
    got = session.load(g, weights_registry={"w": aligned}).execute()[0].to_numpy()
    np.testing.assert_array_equal(got, aligned)
    for bad in (0, 3, -4, True, 2.0):
        with pytest.raises(ValueError, match="power of 2"):
            Weight("w", DType.float32, (4,), None, None, align=bad)


def test_weight_data_holds_a_buffer_that_max_code_hands_on():
    torch = pytest.importorskip("torch")
    values = np.array([1.5, -2.0, 0.25], ml_dtypes.bfloat16)
    data = WeightData.from_numpy(values, "w")
    assert isinstance(data.data, Buffer) and data.data.dtype is DType.bfloat16
    assert Buffer.from_dlpack(data.data).to_numpy() is data.array  # no copy, bfloat16 too
    assert torch.equal(torch.from_dlpack(data.data), torch.tensor([1.5, -2.0, 0.25]).bfloat16())
    assert Buffer.from_dlpack(values).to_numpy() is values
    data.data = Buffer.from_numpy(np.zeros(3, ml_dtypes.bfloat16))  # mutable, as MAX's
    assert not data.array.astype(np.float32).any()


def test_a_dtype_of_the_same_size_reads_the_bytes_as_it():
    scales = WeightData.from_numpy(np.array([127, 128, 130], np.uint8), "scales")
    e8m0 = dataclasses.replace(scales, dtype=DType.float8_e8m0fnu)
    assert e8m0.dtype is DType.float8_e8m0fnu
    assert e8m0.astype(DType.float32).array.tolist() == [1.0, 2.0, 8.0]
    with pytest.raises(ValueError, match="float16 is not its array's float32; only raw bytes"):
        WeightData(np.zeros(2, np.float32), "w", DType.float16, (2,))
    with pytest.raises(ValueError, match="int32 is not its array's float32"):
        WeightData(np.zeros(2, np.float32), "w", DType.int32, (2,))
    with pytest.raises(TypeError, match="dtype must be a DType"):
        WeightData(np.zeros(2, np.float32), "w", np.float32, (2,))


def test_a_quantized_tensor_as_its_own_dtype_is_itself():
    blocks = WeightData(np.zeros((1, 34), np.uint8), "t", DType.uint8, (1, 32),
                        QuantizationEncoding.Q8_0)  # fmt: skip
    assert blocks.astype(DType.uint8) is blocks


def test_a_tensor_without_an_encoding_binds_as_declared_and_one_element_either_shape(session):
    fmt = FORMATS["q8_0"]
    blocks = fmt.quantize(np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32))
    with Graph("g", input_types=[TensorType(DType.int64, [2], DeviceRef.CPU())]) as g:
        table = Weight("t", DType.uint8, blocks.shape, None, QuantizationEncoding.Q8_0)
        scale = Weight("s", DType.float32, (), None)
        rows = ops.dequantize(QuantizationEncoding.Q8_0, ops.gather(table, g.inputs[0], 0))
        g.output(rows * scale)
    registry = {"t": WeightData.from_numpy(blocks, "t"), "s": np.array([2.0], np.float32)}
    got = session.load(g, weights_registry=registry).execute(np.array([1, 0]))[0].to_numpy()
    np.testing.assert_array_equal(got, fmt.dequantize(blocks)[[1, 0]] * 2)


def test_dtype_predicates():
    assert DType.float8_e4m3fn.is_float8() and not DType.bfloat16.is_float8()
    assert DType.bfloat16.is_half() and DType.float16.is_half() and not DType.float32.is_half()
    assert DType.uint16.is_unsigned_integral() and not DType.int16.is_unsigned_integral()


def test_a_tensor_ember_does_not_read_is_listed_and_says_why(tmp_path):
    values = {"x": np.zeros(2, np.float32), "z": np.zeros(2, np.complex64)}
    safetensors_numpy.save_file(values, str(tmp_path / "c.safetensors"))
    weights = SafetensorWeights([tmp_path / "c.safetensors"])
    assert [name for name, _ in weights.items()] == ["x", "z"] and weights.z.exists()
    with pytest.raises(CheckpointError, match="complex64"):
        weights.z.data()
    with pytest.raises(TypeError, match=r"not iterable: use items\(\)"):
        list(weights)
    with pytest.raises(TypeError, match="not iterable"):
        "x" in weights  # noqa: B015


def test_maxs_inner_module_path():
    from ember.graph.weights import WeightData as Outer
    from ember.graph.weights.weights import Shape, WeightData, Weights

    assert WeightData is Outer and isinstance(GGUFWeights, type) and Weights is not None
    assert Shape([2]).static_size == 2
