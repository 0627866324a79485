"""`ops.constant_external` (MAX's): a weight declared by a type, bound at `load` by name."""

from __future__ import annotations

import numpy as np
import pytest

from ember.dtype import DType
from ember.graph import DeviceRef, Graph, TensorType, ops

TYPE = TensorType(DType.float32, [2, 3], DeviceRef.CPU())


def test_is_the_array_bound_to_its_name_and_one_weight_per_name(session):
    with Graph("g") as g:
        w = ops.constant_external("w", TYPE)
        again = ops.constant_external("w", TYPE)
        g.output(w + again)
    assert again is w and list(g.weights) == ["w"]
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    got = session.load(g, weights_registry={"w": array}).execute()[0].to_numpy()
    np.testing.assert_array_equal(got, array * 2)


def test_errors():
    with Graph("g"):
        ops.constant_external("w", TYPE)
        with pytest.raises(ValueError, match="a weight named 'w' already exists"):
            ops.constant_external("w", TensorType(DType.float32, [3, 2], DeviceRef.CPU()))
        with pytest.raises(TypeError, match="type must be a TensorType"):
            ops.constant_external("v", DType.float32)
        with pytest.raises(ValueError, match="static shape"):
            ops.constant_external("v", TensorType(DType.float32, ["n"], DeviceRef.CPU()))
        with pytest.raises(ValueError, match="power of 2"):
            ops.constant_external("v", TYPE, align=3)


def test_its_align_is_checked_at_load(session):
    raw = np.zeros(64 + 32, np.uint8)
    start = -raw.ctypes.data % 32 + 4  # 4 bytes past a 32-byte boundary
    with Graph("g") as g:
        g.output(ops.constant_external("w", TYPE, align=32))
    with pytest.raises(ValueError, match="align=32"):
        session.load(
            g, weights_registry={"w": raw[start : start + 24].view(np.float32).reshape(2, 3)}
        )
