"""Host arrays beside graph values take the value's dtype and device, as MAX promotes its weak
operands; `TensorValue.var` and `stdev`; `where`'s error class."""

from __future__ import annotations

import numpy as np
import pytest

from ember.dtype import DType
from ember.graph import DeviceRef, Graph, TensorType, ops
from ember.graph.errors import GraphTypeError


def _types(*dtypes):
    return [TensorType(d, [2], DeviceRef.CPU()) for d in dtypes]


def test_host_arrays_take_the_graph_values_dtype(session):
    with Graph("weak", input_types=_types(DType.float32, DType.int32, DType.bfloat16)) as g:
        f32, i32, bf16 = g.inputs
        halves = f32 + np.array([1.5, 2.5])  # float64 array: float32 result, as MAX
        counts = i32 * np.array(3)  # int64 array: int32 result
        scaled = bf16 * np.array([2.0, 4.0], np.float32)
        assert (halves.dtype, counts.dtype, scaled.dtype) == (DType.float32, DType.int32,
                                                              DType.bfloat16)  # fmt: skip
        g.output(halves, counts, scaled)
    x = np.array([1, 2], np.float32)
    n = np.array([4, -5], np.int32)
    b = np.array([1, 3], DType.bfloat16.to_numpy())
    got = [t.to_numpy() for t in session.load(g).execute(x, n, b)]
    assert got[0].tolist() == [2.5, 4.5] and got[0].dtype == np.float32
    assert got[1].tolist() == [12, -15] and got[1].dtype == np.int32
    assert got[2].astype(np.float32).tolist() == [2.0, 12.0]


def test_arrays_that_would_lose_values_are_refused():
    with Graph("weak", input_types=_types(DType.int32, DType.float32, DType.bool)) as g:
        i32, f32, flags = g.inputs
        with pytest.raises(GraphTypeError, match="float64 array cannot combine with int32"):
            i32 + np.array([1.5])
        with pytest.raises(GraphTypeError, match=r"\(0 to 4294967296\) are not all exact in int32"):
            i32 + np.array([0, 2**32])
        with pytest.raises(ValueError, match="not all exact in float32"):  # MAX's ValueError
            f32 + np.array([2**24 + 1])
        assert (f32 + np.array([2**24])).dtype is DType.float32
        assert (flags | np.array([True, False])).dtype is DType.bool


def test_var_and_stdev_are_maxs_population_ones(session):
    x = np.array([[1, 2, 3, 6], [2, 2, 2, 2]], np.float32)
    with Graph("moments", input_types=[TensorType(DType.float32, [2, 4], DeviceRef.CPU())]) as g:
        g.output(g.inputs[0].var(), g.inputs[0].stdev(axis=1))
    var, stdev = (t.to_numpy() for t in session.load(g).execute(x))
    np.testing.assert_allclose(var[:, 0], x.var(axis=1), rtol=1e-6)
    np.testing.assert_allclose(stdev[:, 0], x.std(axis=1), rtol=1e-6)
    flags = TensorType(DType.bool, [2], DeviceRef.CPU())
    with Graph("b", input_types=[flags]) as g, pytest.raises(TypeError, match="undefined for bool"):
        g.inputs[0].var()


def test_where_refuses_a_non_bool_condition_as_max_does():
    with (
        Graph("w", input_types=_types(DType.float32)) as g,
        pytest.raises(ValueError, match="condition must be bool"),
    ):
        ops.where(g.inputs[0], g.inputs[0], g.inputs[0])


def test_a_torch_tensor_is_weak_too_and_a_list_is_no_operand():
    torch = pytest.importorskip("torch")
    with Graph("weak", input_types=_types(DType.float32)) as g:
        assert (g.inputs[0] + torch.tensor([1.5, 2.5], dtype=torch.float64)).dtype is DType.float32
        with pytest.raises(TypeError, match="got a list"):
            g.inputs[0] + [1.0, 2.0]
