"""MAX's types, devices, dtypes and graphs as MAX code uses them, with `max` renamed to `ember`;
where MAX raises a `TypeError`, ember's error is one too."""

from __future__ import annotations

import os

import ml_dtypes
import numpy as np
import pytest

from ember.driver import CPU, Buffer
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType, Weight, ops


def test_tensor_type_cast():
    t = TensorType(DType.int32, ["batch", 3], DeviceRef.CPU(1))
    assert t.cast(DType.float32) == TensorType(DType.float32, ["batch", 3], DeviceRef.CPU(1))
    assert t.dtype == DType.int32  # a new type; the old one is unchanged


@pytest.mark.parametrize("dim", [-1, -(2**63), 2.5, None, [3]])
def test_a_negative_or_non_int_dimension_is_a_type_error(dim):
    with pytest.raises(TypeError, match=repr(dim).replace("[", r"\[").replace("]", r"\]")):
        TensorType(DType.float32, [2, dim], DeviceRef.CPU())


# `DType.align` in MAX 26.7, read off the installed package.
MAX_ALIGNMENTS = {
    "bool": 1, "int8": 1, "int16": 2, "int32": 4, "int64": 8, "uint8": 1, "uint16": 2,
    "uint32": 4, "uint64": 8, "float16": 2, "float32": 4, "float64": 8, "bfloat16": 2,
    "float4_e2m1fn": 1, "float6_e2m3fn": 1, "float6_e3m2fn": 1, "float8_e8m0fnu": 1,
    "float8_e4m3fn": 1, "float8_e4m3fnuz": 1, "float8_e5m2": 1, "float8_e5m2fnuz": 1,
}  # fmt: skip


def test_dtype_align_matches_max():
    assert {d.name: d.align for d in DType} == MAX_ALIGNMENTS


def test_cpu_device_reports_the_hosts_memory():
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    cpu = CPU()
    stats = cpu.stats
    assert stats["total_memory"] == total == cpu.max_single_alloc_size
    assert 0 < stats["free_memory"] <= total
    assert cpu.api == CPU(1).api == "cpu"


def test_buffer_is_host():
    buffer = Buffer.from_numpy(np.zeros(3, np.float32))
    assert buffer.is_host and buffer.to(CPU(1)).is_host


class Doubler:
    """A module as MAX code writes one: a callable object holding its weights."""

    def __init__(self) -> None:
        self.table = Weight("table", DType.float32, [5, 2], DeviceRef.CPU())

    def __call__(self, ids):
        rows = ops.gather(self.table, ids, axis=0)
        return rows, rows * 2.0


def test_graph_built_by_calling_forward(backend):
    graph = Graph("doubled", Doubler(), input_types=[TensorType(DType.int32, ["n"])])
    assert graph.output_types == [TensorType(DType.float32, ["n", 2])] * 2
    table = np.arange(10, dtype=np.float32).reshape(5, 2)
    model = InferenceSession(backend=backend).load(graph, weights_registry={"table": table})
    rows, doubled = model.execute(np.array([4, 0], np.int32))
    np.testing.assert_array_equal(rows.to_numpy(), table[[4, 0]])
    np.testing.assert_array_equal(doubled.to_numpy(), 2 * table[[4, 0]])


def test_graph_forward_as_a_keyword_and_returning_one_value_or_none():
    single = Graph("one", forward=lambda a, b: a - b, input_types=[TensorType(DType.int8, [2])] * 2)
    assert single.output_types == [TensorType(DType.int8, [2])]
    assert Graph("none", forward=lambda: None).output_types == []


def test_graph_forward_may_return_any_iterable_of_values():
    types = [TensorType(DType.int8, [2])] * 2
    pairs = Graph("gen", forward=lambda a, b: (v + 1 for v in (a, b)), input_types=types)
    assert pairs.output_types == types
    assert Graph("map", forward=lambda a, b: map(ops.negate, [a, b]), input_types=types)
    constant = Graph("array", forward=lambda: np.arange(3, dtype=np.int8))
    assert constant.output_types == [TensorType(DType.int8, [3])]  # one array, one output


def test_graph_forward_must_be_callable():
    with pytest.raises(TypeError, match="input_types="):
        Graph("g", [TensorType(DType.int8, [2])])


def test_type_and_value_are_max_s_bases_of_graph_types_and_values():
    from ember.graph import BufferType, Type, Value

    assert isinstance(TensorType(DType.int8, [2]), Type)
    assert isinstance(BufferType(DType.uint8, [1]), Type)
    with Graph("g", input_types=[TensorType(DType.int8, [2]), BufferType(DType.uint8, [1])]) as g:
        tensor, buffer = g.inputs
        assert isinstance(tensor, Value) and isinstance(buffer, Value)
        assert tensor.tensor is tensor and buffer.buffer is buffer


def test_graph_takes_max_s_device_placement_policy():
    from ember.graph import DevicePlacementPolicy

    policy = DevicePlacementPolicy.Error
    graph = Graph("g", lambda x: x + 1, input_types=[TensorType(DType.int8, [2])],
                  strict_device_placement=policy)  # fmt: skip
    assert graph.strict_device_placement is policy
    assert Graph("h").strict_device_placement is DevicePlacementPolicy.Warn  # MAX's default
    with pytest.raises(TypeError, match="must be a DevicePlacementPolicy"):
        Graph("g", strict_device_placement="error")


@pytest.mark.parametrize("scalar", [np.int32(3), 3, np.int64(3), np.array(3)])
def test_rank_0_input_takes_a_scalar(session, scalar):
    graph = Graph("scalar", lambda i: i * 2, input_types=[TensorType(DType.int32, [])])
    (result,) = session.load(graph).execute(scalar)
    assert result.to_numpy().shape == () and result.to_numpy() == 6


def test_rank_0_input_checks_a_scalar_like_an_array(session):
    graph = Graph("scalar", lambda i: i * 2, input_types=[TensorType(DType.int32, [])])
    model = session.load(graph)
    with pytest.raises(TypeError, match="does not fit"):
        model.execute(2**40)
    with pytest.raises(TypeError, match="float"):
        model.execute(3.5)


@pytest.mark.parametrize("caught", [TypeError, ValueError])
def test_logical_not_of_a_non_bool_value(caught):
    graph = Graph("g", input_types=[TensorType(DType.int32, [3])])
    with graph, pytest.raises(caught, match="int32"):
        ops.logical_not(graph.inputs[0])


@pytest.mark.parametrize("caught", [TypeError, ValueError])
def test_dequantize_of_a_symbolic_last_dimension(caught):
    graph = Graph("g", input_types=[TensorType(DType.uint8, ["n", "bytes"])])
    with graph, pytest.raises(caught, match="static"):
        ops.dequantize(QuantizationEncoding.Q4_0, graph.inputs[0])


def test_rank_0_input_takes_a_scalar_of_its_own_narrow_dtype(session):
    graph = Graph("bf16", lambda v: v * 2, input_types=[TensorType(DType.bfloat16, [])])
    result = session.load(graph).execute(ml_dtypes.bfloat16(1.5))[0].to_numpy()
    assert result.dtype == ml_dtypes.bfloat16 and float(result) == 3.0
