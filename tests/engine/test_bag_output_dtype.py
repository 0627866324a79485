"""`output_dtype` on bags and collections: float32 sums (of float32 and quantized tables)
rounded once more, to bfloat16 or float16, as FBGEMM's and TorchRec's `output_dtype` do; the
bits are those of the float32 result cast, sharded or not."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_same_bits

import ember.nn as nn
from ember.dtype import DType
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType
from ember.quant import FORMATS

NARROW = [DType.bfloat16, DType.float16]
IDS = TensorType(DType.int64, ["n"])
LENGTHS = TensorType(DType.int32, [3, "batch"])


def tables():
    rng = np.random.default_rng(0)
    values = rng.standard_normal((3, 50, 64)).astype(np.float32) * 3
    values[:, 7, :4] = 6e4  # float16's largest is 65504: sums with row 7 twice overflow to inf
    return {
        "f32": values[0],
        "int8": FORMATS["rowwise_int8"].quantize(values[1]),
        "q8": FORMATS["q8_0"].quantize(values[2]),
    }


def bags(output_dtype=None):
    int8 = QuantizationEncoding.ROWWISE_INT8
    return [
        nn.EmbeddingBag(50, 64, DType.float32, name="f32", output_dtype=output_dtype),
        nn.EmbeddingBag(
            50,
            72,
            DType.uint8,
            quantization_encoding=int8,
            name="int8",
            mode="mean",
            output_dtype=output_dtype,
        ),
        nn.EmbeddingBag(
            50,
            68,
            DType.uint8,
            quantization_encoding=QuantizationEncoding.Q8_0,
            name="q8",
            mode="max",
            output_dtype=output_dtype,
        ),
    ]


def ids_and_offsets():
    ids = np.random.default_rng(1).integers(0, 50, 40)
    ids[[0, 1]] = 7
    return ids, np.array([0, 3, 3, 17, 30])  # an empty bag


@pytest.mark.filterwarnings("error")  # overflow to inf is IEEE's result, not a warning
@pytest.mark.parametrize("output_dtype", NARROW)
def test_a_bag_rounds_its_float32_sums_once(session, output_dtype):
    ids, offsets = ids_and_offsets()
    for wide, narrow in zip(bags(), bags(output_dtype), strict=True):
        results = []
        for bag in (wide, narrow):
            with Graph("bag", input_types=[IDS, TensorType(DType.int64, ["bags"])]) as g:
                g.output(bag(*g.inputs))
            model = session.load(g, {bag.weight.name: tables()[bag.weight.name]})
            results.append(model.execute(ids, offsets)[0].to_numpy())
        assert results[0].dtype == np.float32
        with np.errstate(over="ignore"):
            want = results[0].astype(output_dtype.to_numpy())
        assert_same_bits(results[1], want)
        if bag.mode == "sum" and output_dtype is DType.float16:
            assert np.isinf(results[1][0, :4]).all()


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("output_dtype", NARROW)
@pytest.mark.parametrize("sharded", [False, True])
def test_a_collection_rounds_its_float32_result_once(session, output_dtype, sharded):
    devices = [DeviceRef.CPU(0), DeviceRef.CPU(1)] if sharded else None
    rng = np.random.default_rng(2)
    lengths = rng.integers(0, 5, (3, 6)).astype(np.int32)
    lengths[0, 0] = 2
    values = rng.integers(0, 50, lengths.sum())
    values[:2] = 7  # the first sample's float32 sum: past float16's range
    results = []
    for dtype in (None, output_dtype):
        collection = nn.EmbeddingBagCollection(
            bags(), devices=devices, sharding="row" if sharded else "table", output_dtype=dtype
        )
        with Graph("collection", input_types=[IDS, LENGTHS]) as g:
            out = collection(*g.inputs)
            g.output(*(out if sharded else [out]))
        results.append([r.to_numpy() for r in session.load(g, tables()).execute(values, lengths)])
    for wide, narrow in zip(*results, strict=True):
        assert wide.dtype == np.float32
        with np.errstate(over="ignore"):
            assert_same_bits(narrow, wide.astype(output_dtype.to_numpy()))
        assert np.isinf(narrow[0, :4]).all() == (output_dtype is DType.float16)


@pytest.mark.parametrize("table_dtype", [DType.bfloat16, DType.float16])
@pytest.mark.parametrize("sharded", [False, True])
def test_half_tables_give_their_float32_pooling_when_asked(session, table_dtype, sharded):
    """TorchRec's float16 tables with float32 output: the float32 sums, not the half ones
    widened; the same bits as a float32 table holding the same values."""
    values = tables()["f32"].astype(table_dtype.to_numpy())
    ids, offsets = ids_and_offsets()
    results = []
    for dtype, table in ((table_dtype, values), (DType.float32, values.astype(np.float32))):
        for mode in ("sum", "mean"):
            output = DType.float32 if dtype is table_dtype else None
            bag = nn.EmbeddingBag(50, 64, dtype, name="t", mode=mode, output_dtype=output)
            with Graph("bag", input_types=[IDS, TensorType(DType.int64, ["bags"])]) as g:
                g.output(bag(*g.inputs))
            results.append(session.load(g, {"t": table}).execute(ids, offsets)[0].to_numpy())
        devices = [DeviceRef.CPU(0), DeviceRef.CPU(1)] if sharded else None
        halves = [nn.EmbeddingBag(50, 64, dtype, name=n) for n in ("a", "b")]
        collection = nn.EmbeddingBagCollection(
            halves, devices=devices, sharding="row" if sharded else "table",
            output_dtype=DType.float32 if dtype is table_dtype else None,
        )  # fmt: skip
        with Graph("collection", input_types=[IDS, TensorType(DType.int32, [2, "batch"])]) as g:
            out = collection(*g.inputs)
            g.output(*(out if sharded else [out]))
        lengths = np.array([[3, 0, 5], [2, 2, 1]], np.int32)
        model = session.load(g, {"a": table, "b": table[::-1].copy()})
        results.extend(r.to_numpy() for r in model.execute(ids[:13], lengths))
    half = len(results) // 2
    for from_half, from_float32 in zip(results[:half], results[half:], strict=True):
        assert from_half.dtype == np.float32
        assert_same_bits(from_half, from_float32)


def test_output_dtype_is_checked_when_the_layer_is_built():
    with pytest.raises(TypeError, match=r"EmbeddingBag: output_dtype must be one of"):
        nn.EmbeddingBag(10, 4, DType.float32, output_dtype=DType.int32)
    with pytest.raises(TypeError, match=r"EmbeddingBagCollection: output_dtype must be one of"):
        nn.EmbeddingBagCollection([nn.EmbeddingBag(10, 4, DType.float32)], output_dtype="f16")
    with pytest.raises(ValueError, match=r"bags\[0\] has output_dtype=.*to the collection"):
        nn.EmbeddingBagCollection([nn.EmbeddingBag(10, 4, DType.float32, output_dtype=NARROW[0])])
