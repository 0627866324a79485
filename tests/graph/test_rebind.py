"""`ops.rebind` and `TensorValue.rebind` (MAX's): new names for an axis, bound by the rebind
where no input binds them, and a shape checked at each execution."""

from __future__ import annotations

import numpy as np
import pytest

from ember.dtype import DType
from ember.graph import Dim, Graph, TensorType, ops


def test_rebinds_as_maxs_own_test_does():
    types = [TensorType(DType.float32, [6, 5]), TensorType(DType.float32, ["batch", "channels"]),
             TensorType(DType.float32, ["batch", "channels", "other"])]  # fmt: skip
    with Graph("rebind", input_types=types) as g:
        a, b, c = g.inputs
        assert a.rebind(("batch", "channels")).shape == ["batch", "channels"]
        assert b.rebind((3, 10)).shape == [3, 10]
        assert a.rebind(("notbatch", "notchannels")).shape == ["notbatch", "notchannels"]
        expression = c.reshape(("batch", -1)).rebind(("batch", "expression"))
        assert expression.shape == ["batch", "expression"]


def test_a_constant_s_new_names_are_bound_at_each_execution(session):
    """A rebind of values known at load still runs per execute, so the nodes after it that
    name its new dims find them bound."""
    with Graph("constant", input_types=[TensorType(DType.int32, [2])]) as g:
        table = ops.constant(np.arange(12, dtype=np.float32).reshape(6, 2), DType.float32)
        rows = table.rebind(["k", 2])
        g.output(rows.reshape(["k", 2, 1]), g.inputs[0] + 1)
    rows, _ = session.load(g).execute(np.zeros(2, np.int32))
    np.testing.assert_array_equal(rows.to_numpy(), np.arange(12, dtype=np.float32).reshape(6, 2, 1))


def test_new_names_are_bound_and_shapes_checked_at_execution(session):
    types = [TensorType(DType.float32, [6, 5]), TensorType(DType.float32, ["batch", "channels"]),
             TensorType(DType.float32, ["batch", "channels", "other"])]  # fmt: skip
    with Graph("rebind", input_types=types) as g:
        a, b, c = g.inputs
        existing = b.rebind((6, 5))
        new = a.rebind(("notbatch", "notchannels"))
        expression = c.reshape(("batch", -1)).rebind(("batch", "expression"))
        flat = ops.reshape(new, ["notbatch", "notchannels", 1])  # names the rebind binds
        g.output(existing, new, expression, flat)
    model = session.load(g)
    x = np.ones((6, 5), np.float32)
    outs = model.execute(x, x, np.ones((6, 5, 2), np.float32))
    assert [o.to_numpy().shape for o in outs] == [(6, 5), (6, 5), (6, 10), (6, 5, 1)]
    with pytest.raises(ValueError, match=r"the value's shape is \[3, 10\] at this execution"):
        model.execute(x, np.ones((3, 10), np.float32), np.ones((3, 10, 2), np.float32))


def test_a_new_name_in_an_expression_is_solved_for(session):
    """MAX's MAXPLAT-328 pattern: `rebind([Dim("k") * 4, ...])` binds k to a quarter."""
    with Graph("rebind", input_types=[TensorType(DType.float32, ["n", 8])]) as g:
        quarters = g.inputs[0].rebind([Dim("k") * 4, 8], "rows come in fours")
        g.output(quarters.reshape(["k", 4, 8]), ops.reshape(quarters, [Dim("k") * 2, 16]))
    model = session.load(g)
    x = np.arange(96, dtype=np.float32).reshape(12, 8)
    split, regrouped = (t.to_numpy() for t in model.execute(x))
    assert np.array_equal(split, x.reshape(3, 4, 8)) and regrouped.shape == (6, 16)
    with pytest.raises(
        ValueError, match=r"^rows come in fours: rebind: the value's shape is \[6, 8\]"
    ):
        model.execute(np.zeros((6, 8), np.float32))


def test_message_leads_the_error(session):
    with Graph("rebind", input_types=[TensorType(DType.int32, ["n"])]) as g:
        g.output(ops.rebind(g.inputs[0], [4], message="four tokens"))
    model = session.load(g)
    assert model.execute(np.arange(4, dtype=np.int32))[0].to_numpy().tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"^four tokens: rebind: the value's shape is \[5\]"):
        model.execute(np.arange(5, dtype=np.int32))


def test_errors():
    with Graph("bad", input_types=[TensorType(DType.float32, [6, 5])]) as g:
        x = g.inputs[0]
        with pytest.raises(ValueError, match="has rank 2"):
            x.rebind([30])
        with pytest.raises(ValueError, match=r"axis 1 of \[Dim\(6\), Dim\(5\)\] is Dim\(5\)"):
            x.rebind([6, 4])
        with pytest.raises(ValueError, match="no axis of a graph input"):
            x.rebind([Dim("a") + Dim("b"), 5])  # two new names on one axis: neither is bound
        with pytest.raises(NotImplementedError, match="filter layouts"):
            ops.rebind(x, [6, 5], layout="RSCF")
