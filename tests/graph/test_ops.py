"""Type rules of every op: dtype, shape (symbolic dims included), device, and bad input."""

import numpy as np
import pytest

from ember.dtype import DType
from ember.graph import DeviceRef, Dim, Graph, QuantizationEncoding, TensorType, Weight, ops

CPU, GPU = DeviceRef.CPU(), DeviceRef.GPU()


def graph(*types):
    return Graph("test", input_types=list(types))


def f32(*shape, device=CPU):
    return TensorType(DType.float32, shape, device)


def test_constant_defaults_to_cpu_and_takes_the_dtype():
    with graph():
        c = ops.constant(np.arange(6).reshape(2, 3), DType.int32)
        assert (c.dtype, c.shape, c.device) == (DType.int32, [2, 3], CPU)
        assert ops.constant(1.5, DType.float32, device=GPU).device == GPU
        with pytest.raises(TypeError, match="give a dtype"):
            ops.constant(3)
        with pytest.raises(TypeError, match="do not fit int32 exactly"):
            ops.constant(np.array([1.5]), DType.int32)
        with pytest.raises(TypeError, match=f"{2**70} does not fit int64"):
            ops.constant(2**70, DType.int64)


def test_elementwise_broadcasts_static_and_symbolic_dims():
    with graph(f32("batch", 1, 4), f32(3, 1)) as g:
        a, b = g.inputs
        for fn in (ops.add, ops.sub, ops.mul, ops.div, ops.max, ops.min, ops.pow, ops.mod):
            out = fn(a, b)
            assert (out.shape, out.dtype) == (["batch", 3, 4], DType.float32)
        assert (a + 1).shape == ["batch", 1, 4]
        assert (2 * a).dtype == DType.float32
        assert (-a).shape == a.shape and ops.abs(a).shape == a.shape


def test_comparisons_and_logic_give_bool():
    with graph(f32("n"), f32(1)) as g:
        a, b = g.inputs
        for cmp in (a < b, a <= b, a > b, a >= b, a == b, a != b):
            assert cmp.dtype == DType.bool and cmp.shape == ["n"]
        both = ops.logical_and(a > 0, b < 1)
        assert both.dtype == DType.bool
        assert (~both).dtype == DType.bool and ops.logical_or(both, both).shape == ["n"]
        with pytest.raises(TypeError, match="expected bool values, got float32"):
            ops.logical_and(a, a)


def test_binary_op_errors():
    with graph(f32(4), f32(5), f32(4, device=GPU), TensorType(DType.int32, [4])) as g:
        x, y, on_gpu, ints = g.inputs
        with pytest.raises(ValueError, match=r"\[Dim\(4\)\] and \[Dim\(5\)\] do not broadcast"):
            x + y
        with pytest.raises(ValueError, match=r"same device; they live on cpu:0 and gpu:0"):
            x + on_gpu
        assert (x.to(GPU) + on_gpu).device == GPU
        with pytest.raises(TypeError, match="float32 and int32"):
            x + ints
        with pytest.raises(TypeError, match=r"0\.5 is not an integer"):
            ints + 0.5
    with (
        graph(f32("a"), f32("b")) as g,
        pytest.raises(ValueError, match=r"Dim\('a'\) against Dim\('b'\)"),
    ):
        g.inputs[0] + g.inputs[1]


def test_select_and_cast():
    with graph(f32("n", 4), TensorType(DType.bool, ["n", 1])) as g:
        x, cond = g.inputs
        out = ops.select(cond, x, 0.0)
        assert out.shape == ["n", 4] and out.dtype == DType.float32
        assert x.cast(DType.bfloat16).dtype == DType.bfloat16
        assert x.cast(DType.float32) is x
        with pytest.raises(TypeError, match="condition must be bool"):
            ops.select(x, x, x)
        with pytest.raises(TypeError, match="DType"):
            ops.cast(x, np.float32)


def test_gather_shapes_and_errors():
    table = Weight("t", DType.float32, [100, 8])
    with graph(TensorType(DType.uint16, ["b", "s"]), TensorType(DType.float32, [3])) as g:
        ids, floats = g.inputs
        assert ops.gather(table, ids, axis=0).shape == ["b", "s", 8]
        assert ops.gather(table, ids, axis=-1).shape == [100, "b", "s"]
        scalar = ops.constant(np.int64(5))
        assert ops.gather(table, scalar, axis=0).shape == [8]
        with pytest.raises(TypeError, match="indices must have an integer dtype, got float32"):
            ops.gather(table, floats, axis=0)
        with pytest.raises(ValueError, match="axis 2 is out of range for a value of rank 2"):
            ops.gather(table, ids, axis=2)
        with pytest.raises(ValueError, match="out_of_range must be one of"):
            ops.gather(table, ids, axis=0, out_of_range="ignore")
        with pytest.raises(ValueError, match="indices on gpu:0"):
            ops.gather(table, ids.to(GPU), axis=0)


def test_dequantize_shape_and_errors():
    with graph(TensorType(DType.uint8, ["n", 3 * 210]), TensorType(DType.uint8, [4, 100])) as g:
        packed, odd = g.inputs
        out = ops.dequantize(QuantizationEncoding.Q6_K, packed)
        assert (out.shape, out.dtype) == (["n", 768], DType.float32)
        half = ops.dequantize(QuantizationEncoding.Q4_0, packed, out_dtype=DType.bfloat16)
        assert half.shape == ["n", 630 // 18 * 32] and half.dtype == DType.bfloat16
        with pytest.raises(ValueError, match="not a positive multiple of 210"):
            ops.dequantize(QuantizationEncoding.Q6_K, odd)
        with pytest.raises(ValueError, match="GPTQ is a linear-layer format"):
            ops.dequantize(QuantizationEncoding.GPTQ, packed)
        with pytest.raises(TypeError, match="uint8 bytes, got float32"):
            ops.dequantize(QuantizationEncoding.Q4_0, packed.cast(DType.float32))


def test_shape_ops():
    with graph(f32("batch", 4, 8)) as g:
        x = g.inputs[0]
        assert x.reshape(["batch", 32]).shape == ["batch", 32]
        assert x.reshape(["batch", -1]).shape == ["batch", 32]
        assert x.reshape([-1, 8]).shape[0].evaluate({"batch": 3}) == 12
        assert ops.unsqueeze(x, -1).shape == ["batch", 4, 8, 1]
        assert ops.unsqueeze(x, 0).shape == [1, "batch", 4, 8]
        assert ops.squeeze(ops.unsqueeze(x, 1), 1).shape == ["batch", 4, 8]
        assert x[:, 1:3].shape == ["batch", 2, 8]
        assert x[..., -1].shape == ["batch", 4]
        assert x[0].shape == [4, 8]
        with pytest.raises(ValueError, match="different numbers of elements"):
            x.reshape(["batch", 31])
        with pytest.raises(ValueError, match="not 1"):
            ops.squeeze(x, 1)
        assert [x[1:].shape[0], x[:-2].shape[0], x[1:-1].shape[0]] == [
            Dim("batch") - 1,
            Dim("batch") - 2,
            Dim("batch") - 2,
        ]
        assert [x[1:3].shape[0], x[-3:].shape[0], x[-3:-1].shape[0]] == [2, 3, 2]
        steps = [x[::2].shape[0], x[1::3].shape[0], x[::-1].shape[0], x[-5::2].shape[0]]
        assert [d.evaluate({"batch": 8}) for d in steps] == [4, 3, 8, 3]
        assert x[3:1].shape[0] == x[-1:-3].shape[0] == 0  # empty whatever the size
        for unknown in (slice(None, 1, -1), slice(-2, 3), slice(2, None, -1)):
            with pytest.raises(ValueError, match=r"symbolic dim .* has an unknown length"):
                x[unknown]
        with pytest.raises(IndexError, match="out of range for axis 1"):
            x[:, 4]
        with pytest.raises(ValueError, match="at most one dim may be -1"):
            x.reshape([-1, -1])


def test_reshape_infers_symbolic_hole():
    with graph(f32("batch", "seq", 8)) as g:
        flat = g.inputs[0].reshape([-1, 8])
        assert flat.shape[0].evaluate({"batch": 3, "seq": 5}) == 15


def test_transfer_and_collectives():
    with graph(f32("n", 4)) as g:
        x = g.inputs[0]
        assert x.to(CPU) is x
        assert x.to(GPU).device == GPU
        devices = [DeviceRef.CPU(0), DeviceRef.CPU(1)]
        copies = ops.distributed_broadcast(x, devices)
        assert [c.device for c in copies] == devices
        summed = ops.allreduce.sum(copies)
        assert [s.device for s in summed] == devices and summed[0].shape == ["n", 4]
        with pytest.raises(ValueError, match="own device"):
            ops.allreduce.sum([x, x])
        flags = [ops.cast(c, DType.bool) for c in copies]
        with pytest.raises(TypeError, match="adds numbers, got bool values"):
            ops.allreduce.sum(flags)  # XLA's sum would turn them into int32
        with pytest.raises(ValueError, match="devices repeat"):
            ops.distributed_broadcast(x, [CPU, CPU])


def test_values_cannot_cross_graphs_or_live_without_one():
    with Graph("first", input_types=[f32(4)]) as first:
        x = first.inputs[0]
    message = "a value of graph 'first' was used in graph 'second'; values cannot cross graphs"
    with Graph("second", input_types=[f32(4)]) as second, pytest.raises(ValueError, match=message):
        second.inputs[0] + x
    with Graph("second", input_types=[f32(4)]), pytest.raises(ValueError, match=message):
        x * 2
    with pytest.raises(ValueError, match="no Graph is open"):
        ops.constant(np.zeros(3, np.float32))


def test_two_weights_of_one_name():
    with graph(TensorType(DType.int32, [2])) as g:
        ops.gather(Weight("w", DType.float32, [4, 4]), g.inputs[0], axis=0)
        with pytest.raises(ValueError, match="a weight named 'w' already exists"):
            ops.gather(Weight("w", DType.float32, [4, 4]), g.inputs[0], axis=0)


def test_check_indices():
    with graph(TensorType(DType.int32, ["n"])) as g:
        assert ops.check_indices(g.inputs[0], 10).shape == ["n"]
        with pytest.raises(ValueError, match="positive int"):
            ops.check_indices(g.inputs[0], 0)


def test_sharded_gather_type_rule():
    shards = [Weight(f"s{i}", DType.float32, [3 - i, 4], DeviceRef.CPU(i)) for i in range(3)]
    with Graph("g", input_types=[TensorType(DType.int32, ["n"])]) as g:
        outs = ops.sharded_gather(shards, g.inputs[0])
        assert [o.device for o in outs] == [DeviceRef.CPU(i) for i in range(3)]
        assert outs[2].shape == ["n", 4] and outs[0].node.attrs["offsets"] == (0, 3, 5)
        with pytest.raises(ValueError, match="each shard must be on its own device"):
            ops.sharded_gather([shards[0], shards[0]], g.inputs[0])
        with pytest.raises(TypeError, match="indices must have an integer dtype"):
            ops.sharded_gather(shards, ops.constant(np.zeros(2, np.float32)))
        with pytest.raises(ValueError, match="out_of_range must be one of"):
            ops.sharded_gather(shards, g.inputs[0], out_of_range="wrap")
        other = Weight("o", DType.float32, [2, 5], DeviceRef.CPU(5))
        with pytest.raises(ValueError, match="shard rows differ"):
            ops.sharded_gather([shards[0], other], g.inputs[0])
        with pytest.raises(ValueError, match="needs at least one shard"):
            ops.sharded_gather([], g.inputs[0])
