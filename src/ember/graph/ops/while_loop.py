"""`while_loop(initial_values, predicate, body)`: MAX's loop inside a graph. The predicate
and the body are blocks (`ember.graph.block`) called on the carried values; the body returns
the next ones, of the same types; the loop's results are the values for which the predicate
first fails. A greedy decoding loop, say, carries a position and the tokens so far.

>>> from ember.graph import Graph
>>> with Graph("count") as g:
...     [n] = while_loop(constant(0, DType.int32), lambda x: x < 10, lambda x: x + 1)
>>> n.dtype, n.shape
(int32, [])

Blocks may read any value of the graphs around them (captured once each); the predicate is a
bool scalar on the CPU, as in MAX.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ember.dtype import DType

from ..block import Block
from ..device import DeviceRef
from ..errors import GraphTypeError
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import BufferValue, TensorValue
from .constant import as_value, constant

__all__ = ["WHILE_LOOP", "block_outputs", "while_loop"]

WHILE_LOOP = Op("while_loop", may_alias=True)
"""Inputs: the initial values, then the predicate's captured values, then the body's. A
loop that runs no step returns its initial values."""


def while_loop(
    initial_values: Iterable[Any] | Any,
    predicate: Callable[..., Any],
    body: Callable[..., Any],
) -> list[TensorValue]:
    """The carried values once ``predicate(*values)`` is false, starting from
    ``initial_values`` (one value or several) and replacing them by ``body(*values)``.

    Raises:
        ValueError: no initial values; the predicate's result is not one bool scalar on the
            CPU.
        GraphTypeError (a TypeError, as MAX raises, and a ValueError): the body returns
            another number of values, or one of another type.
        NotImplementedError: an initial value is a buffer (as in MAX).
    """
    values = (
        [initial_values]
        if isinstance(initial_values, TensorValue) or not isinstance(initial_values, Iterable)
        else list(initial_values)
    )
    if not values:
        raise ValueError(
            "ops.while_loop: While loops must have at least one iteration value (the values "
            "to carry)"
        )
    if any(isinstance(v, BufferValue) for v in values):
        raise NotImplementedError("ops.while_loop carries tensors; buffers are not supported")
    graph = current_graph()
    values = [as_value(v, graph) for v in values]
    types = [v.type for v in values]
    condition = Block.build(graph, "predicate", types, predicate)
    check_predicate("ops.while_loop", condition.outputs)
    step = Block.build(graph, "body", types, lambda *a: block_outputs("ops.while_loop's body",
                                                                      body(*a), types))  # fmt: skip
    attrs = {"carried": len(values), "predicate": condition, "body": step}
    inputs = [*values, *condition.captured, *step.captured]
    return list(graph.add_node(WHILE_LOOP, inputs, attrs, types))


def check_predicate(op: str, outputs: list[TensorValue]) -> None:
    if len(outputs) != 1:
        raise ValueError(f"{op}: the predicate returns one bool scalar, got {len(outputs)} values")
    [flag] = outputs
    if flag.dtype is not DType.bool or flag.rank != 0:
        raise ValueError(
            f"{op}: the predicate must be a bool scalar, got {flag.dtype!r}{flag.shape}"
        )
    if not flag.device.is_cpu():
        raise ValueError(
            f"{op}: the predicate must be on the CPU, got one on {flag.device}; move it with "
            "ops.transfer_to(flag, DeviceRef.CPU())"
        )


def block_outputs(what: str, result: Any, types: list[TensorType]) -> list[TensorValue]:
    """A block's result as values of ``types``: Python numbers become constants of theirs.

    Raises:
        GraphTypeError (a TypeError, as MAX raises, and a ValueError): another number of
            values, or a value of another type.
    """
    if result is None:
        result = []
    elif isinstance(result, TensorValue) or not isinstance(result, Iterable):
        result = [result]
    result = list(result)
    if len(result) != len(types):
        raise GraphTypeError(f"{what} returns {len(result)} values; expected {len(types)}")
    values = []
    for i, (value, expected) in enumerate(zip(result, types, strict=True)):
        if not isinstance(value, TensorValue) and isinstance(value, int | float | bool):
            value = constant(value, expected.dtype, expected.device)
            if expected.rank:
                value = value.broadcast_to(expected.shape)
        value = as_value(value)
        if value.type != expected:
            raise GraphTypeError(
                f"{what}: value {i} is {_typed(value.type)}; expected {_typed(expected)}"
            )
        values.append(value)
    return values


def _typed(t: TensorType) -> str:
    device = "" if t.device == DeviceRef.CPU() else f" on {t.device}"
    return f"{t.dtype!r}{t.shape}{device}"
