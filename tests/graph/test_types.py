import pytest

from ember.dtype import DType
from ember.graph import (
    AlgebraicDim,
    DeviceRef,
    Dim,
    Graph,
    QuantizationEncoding,
    Shape,
    StaticDim,
    SymbolicDim,
    TensorType,
    Weight,
)


def test_dim_kinds_and_reprs():
    assert isinstance(Dim(4), StaticDim) and repr(Dim(4)) == "Dim(4)"
    assert isinstance(Dim("batch"), SymbolicDim) and repr(Dim("batch")) == "Dim('batch')"
    assert Dim(Dim(3)) == Dim(3)
    product = Dim("batch") * Dim("seq")
    assert isinstance(product, AlgebraicDim) and repr(product) == "Dim(batch * seq)"
    assert product.evaluate({"batch": 2, "seq": 5}) == 10
    assert Dim(3) * 4 + 1 == Dim(13)
    assert (2 * Dim("n")).evaluate({"n": 7}) == 14


@pytest.mark.parametrize(("bad", "error"), [(-1, ValueError), (1.5, TypeError), ("9x", ValueError)])
def test_bad_dims(bad, error):
    with pytest.raises(error, match=repr(bad).strip("'")):
        Dim(bad)


def test_shape_prints_like_max():
    shape = Shape([4, 16, 256])
    assert str(shape) == repr(shape) == "[Dim(4), Dim(16), Dim(256)]"
    assert Shape([2, "s"]).rank == 2 and Shape([2, 3]).static_size == 6
    with pytest.raises(ValueError, match="symbolic"):
        _ = Shape(["s"]).static_size


def test_device_ref():
    assert str(DeviceRef.CPU()) == "cpu:0" and str(DeviceRef.GPU(1)) == "gpu:1"
    assert DeviceRef.GPU(1) == DeviceRef("gpu", 1) != DeviceRef.GPU(0)
    assert DeviceRef.CPU() != DeviceRef.GPU()
    assert len({DeviceRef.CPU(), DeviceRef.CPU(0)}) == 1
    with pytest.raises(ValueError, match="'tpu'"):
        DeviceRef("tpu")
    with pytest.raises(ValueError, match="-1"):
        DeviceRef.GPU(-1)


def test_tensor_type():
    t = TensorType(DType.int32, ["batch", 16], DeviceRef.CPU())
    assert t.rank == 2 and t.shape == Shape(["batch", 16]) and t.device == DeviceRef.CPU()
    assert TensorType(DType.int32, [1]).device == DeviceRef.CPU()
    with pytest.raises(TypeError, match="DType"):
        TensorType("int32", [1])
    with pytest.raises(ValueError, match="-3"):
        TensorType(DType.int32, [-3])


def test_quantization_encoding_matches_max():
    names = [e.name for e in QuantizationEncoding][:5]
    assert names == ["q4_0", "q4_k", "q5_k", "q6_k", "gptq"]
    q4k = QuantizationEncoding.Q4_K
    assert (q4k.elements_per_block, q4k.block_size) == (256, 144)
    assert QuantizationEncoding.Q4_0.block_parameters.block_size == 18
    assert QuantizationEncoding.Q5_K.block_size == 176
    assert QuantizationEncoding.Q6_K.block_size == 210
    with pytest.raises(ValueError, match="linear-layer format"):
        _ = QuantizationEncoding.GPTQ.block_parameters
    with pytest.raises(ValueError, match="multiple of 144"):
        q4k.hidden_size(100)


def test_weight_and_graph_repr():
    w = Weight("emb", DType.float32, [10, 4])
    assert repr(w) == "Weight('emb', float32, [Dim(10), Dim(4)], cpu:0)"
    with pytest.raises(ValueError, match="static shape"):
        Weight("emb", DType.float32, ["n", 4])
    with Graph("g", input_types=[TensorType(DType.int64, ["n"])]) as g:
        from ember.graph import ops

        g.output(ops.gather(w, g.inputs[0], axis=0))
    text = str(g)
    assert "gather(%1, %0, axis=0" in text and "weight(name='emb'" in text
    assert text.splitlines()[-1] == "  output %2"
    assert g.output_types == [TensorType(DType.float32, ["n", 4])]


def test_weights_slice_and_move_like_values():
    from ember.graph import ops

    w = Weight("w", DType.float32, [10, 4])
    with Graph("g", input_types=[TensorType(DType.int32, ["n"])]) as g:
        shard = w[2:6]
        assert shard.shape == [4, 4] and shard.node.op.name == "slice"
        assert w.to(DeviceRef.CPU(1)).device == DeviceRef.CPU(1)
        assert w.cast(DType.bfloat16).dtype == DType.bfloat16
        assert w.reshape([40]).shape == [40]
        assert ops.gather(shard, g.inputs[0], axis=0).shape == ["n", 4]
        assert len(g.weights) == 1  # one node, however often the weight is used


def test_device_ref_from_a_driver_device():
    from ember.driver import CPU

    assert DeviceRef.from_device(CPU(2)) == DeviceRef.CPU(2)
    with pytest.raises(TypeError, match=r"ember\.driver device"):
        DeviceRef.from_device("cpu")


def test_tensor_value_converts_like_max():
    import numpy as np

    from ember.graph import TensorValue

    w = Weight("w", DType.float32, [10, 4])
    with Graph("g"):
        value = TensorValue(w)
        assert isinstance(value, TensorValue) and value.shape == [10, 4]
        assert TensorValue(value) is value
        assert TensorValue(np.zeros(3, np.int8)).dtype == DType.int8
        with pytest.raises(TypeError, match="got the Python int 3; wrap Python scalars"):
            TensorValue(3)
        with pytest.raises(TypeError, match=r"host DLPack tensor, got a dict$"):
            TensorValue({"a": 1})


def test_a_torch_tensor_is_a_constant_as_a_numpy_array_is(session):
    """Its values copied into the graph (the graph keeps them whatever the tensor becomes)."""
    import numpy as np

    torch = pytest.importorskip("torch")
    from ember.graph import ops

    table = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    with Graph("g", input_types=[TensorType(DType.float32, [3, 4])]) as g:
        g.output(g.inputs[0] + ops.transpose(ops.transpose(table, 0, 1), 0, 1))
    model = session.load(g)
    table.zero_()
    result = model.execute(np.ones((3, 4), np.float32))[0].to_numpy()
    np.testing.assert_array_equal(result, 1 + np.arange(12).reshape(3, 4))
