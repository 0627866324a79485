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
    rng = np.random.default_rng(1)
    return rng.integers(0, 50, 40), np.array([0, 3, 3, 17, 30])  # an empty bag


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
        assert_same_bits(results[1], results[0].astype(output_dtype.to_numpy()))


@pytest.mark.parametrize("output_dtype", NARROW)
@pytest.mark.parametrize("sharded", [False, True])
def test_a_collection_rounds_its_float32_result_once(session, output_dtype, sharded):
    devices = [DeviceRef.CPU(0), DeviceRef.CPU(1)] if sharded else None
    rng = np.random.default_rng(2)
    lengths = rng.integers(0, 5, (3, 6)).astype(np.int32)
    values = rng.integers(0, 50, lengths.sum())
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
        assert_same_bits(narrow, wide.astype(output_dtype.to_numpy()))


def test_output_dtype_is_checked_when_the_layer_is_built():
    with pytest.raises(TypeError, match=r"output_dtype must be DType.bfloat16 or DType.float16"):
        nn.EmbeddingBag(10, 4, DType.float32, output_dtype=DType.int32)
    with pytest.raises(ValueError, match=r"bfloat16 tables come out in bfloat16.*not float32"):
        nn.EmbeddingBag(10, 4, DType.bfloat16, output_dtype=DType.float32)
    same = nn.EmbeddingBag(10, 4, DType.float16, output_dtype=DType.float16)  # what it gives
    assert same.output_dtype is DType.float16
    with pytest.raises(ValueError, match=r"bags\[0\] has output_dtype=.*to the collection"):
        nn.EmbeddingBagCollection([nn.EmbeddingBag(10, 4, DType.float32, output_dtype=NARROW[0])])
    halves = [nn.EmbeddingBag(10, 4, DType.bfloat16, name=n) for n in "ab"]
    with pytest.raises(ValueError, match="bags of bfloat16 tables come out in bfloat16"):
        nn.EmbeddingBagCollection(halves, output_dtype=DType.float16)
    mixed = [nn.EmbeddingBag(10, 4, DType.bfloat16, name="a"), *bags()]
    assert nn.EmbeddingBagCollection(mixed, output_dtype=DType.float16).output_dtype is (
        DType.float16
    )
