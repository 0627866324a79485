"""`cond(pred, out_types, then_fn, else_fn)`: MAX's branch inside a graph. Each branch is a
block (`ember.graph.block`) called with no arguments that may read any value of the graphs
around it; only the branch the predicate picks runs.

>>> from ember.dtype import DType
>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.bool, []), TensorType(DType.float32, [4])]) as g:
...     flag, x = g.inputs
...     [y] = cond(flag, [x.type], lambda: x * 2, lambda: x - 1)
>>> y.shape
[Dim(4)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..block import Block
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .constant import as_value
from .debug_print import token
from .while_loop import block_outputs, check_predicate, takes_values

__all__ = ["COND", "cond"]

COND = Op("cond", may_alias=True)
"""Inputs: the predicate, then the then-branch's captured values, then the else-branch's.
Without `out_types`, its one result is a token (a bool scalar) that no op reads."""


def cond(
    pred: Any,
    out_types: Iterable[TensorType] | None,
    then_fn: Callable[[], Any],
    else_fn: Callable[[], Any],
) -> list[TensorValue]:
    """What ``then_fn()`` returns where ``pred`` is true, else what ``else_fn()`` returns: values
    of ``out_types`` (none when it is None).

    Raises:
        ValueError: ``pred`` is not a bool scalar on the CPU.
        GraphTypeError (a TypeError, as MAX raises, and a ValueError): a branch returns
            another number of values, or one of another type.
        TypeError: an output type is not a TensorType.
    """
    graph = current_graph()
    flag = as_value(pred, graph)
    check_predicate("ops.cond", [flag])
    if isinstance(out_types, TensorType):
        raise TypeError(
            "ops.cond: out_types is a list of TensorTypes (or None), got one TensorType; "
            "wrap it in a list"
        )
    takes_values("ops.cond", "then branch", then_fn, 0)
    takes_values("ops.cond", "else branch", else_fn, 0)
    types = [] if out_types is None else list(out_types)
    for t in types:
        if not isinstance(t, TensorType):
            raise TypeError(f"ops.cond: out_types holds TensorTypes, got {t!r}")
    branches = [
        Block.build(graph, name, [], lambda fn=fn, name=name: block_outputs(
            f"ops.cond's {name} branch", fn(), types))
        for name, fn in (("then", then_fn), ("else", else_fn))
    ]  # fmt: skip
    inputs = [flag, *branches[0].captured, *branches[1].captured]
    attrs = {"then": branches[0], "else": branches[1]}
    if not types:  # run for the branches' effects (prints): a token stands for the results
        graph.add_node(COND, inputs, attrs, [token(flag.device)])
        return []
    return list(graph.add_node(COND, inputs, attrs, types))
