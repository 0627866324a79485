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

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

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
    several = isinstance(initial_values, Iterable) and not (
        isinstance(initial_values, TensorValue | np.ndarray | np.generic | str)
        or hasattr(initial_values, "__dlpack__")
    )  # an array is one value, a list (or any other iterable) of values several
    values = list(initial_values) if several else [initial_values]
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
    takes_values("ops.while_loop", "predicate", predicate, len(values))
    takes_values("ops.while_loop", "body", body, len(values))
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


def takes_values(op: str, role: str, fn: Any, count: int) -> None:
    """Raises TypeError: ``fn`` is not callable, or cannot take ``count`` values."""
    if not callable(fn):
        raise TypeError(f"{op}: the {role} must be callable, got {fn!r}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without one: its call will say
        return
    try:
        signature.bind(*range(count))
    except TypeError:
        raise TypeError(
            f"{op}: the {role} is called with {count} value(s), but its signature is {signature}"
        ) from None


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
            value = _python_number(what, i, value, expected)
        value = as_value(value)
        if value.type != expected:
            raise GraphTypeError(
                f"{what}: value {i} is {_typed(value.type)}; expected {_typed(expected)}"
            )
        values.append(value)
    return values


def _python_number(what: str, i: int, value: Any, expected: TensorType) -> TensorValue:
    """A Python number returned for a value of type ``expected``: a constant of it."""
    if isinstance(value, bool) != (expected.dtype is DType.bool):
        raise GraphTypeError(
            f"{what}: value {i} is the Python {value!r}; expected {_typed(expected)}"
        )
    try:
        number = constant(value, expected.dtype, expected.device)
    except (TypeError, ValueError) as error:
        raise GraphTypeError(
            f"{what}: value {i}, the Python {value!r}, does not fit {_typed(expected)}"
        ) from error
    return number.broadcast_to(expected.shape) if expected.rank else number


def _typed(t: TensorType) -> str:
    device = "" if t.device == DeviceRef.CPU() else f" on {t.device}"
    return f"{t.dtype!r}{t.shape}{device}"
