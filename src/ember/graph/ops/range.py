"""`range(start, stop, step, out_dim, *, dtype, device)`: the numbers from `start` up to, not
including, `stop`, `step` apart (MAX's `ops.range`, numpy's `arange`): position ids, the
offsets of a flattened batch.

Each end and the step is a number, a dim (a symbolic one is its size at the execution) or a
scalar graph value. The length is `out_dim`, and without it is worked out at build from numbers
and dims. Value ``i`` is ``start + i * step``: exact for integers (computed in 64 bits), and
for floats computed in the dtype (float32 arithmetic for float32 and narrower), then rounded to
it. The start, stop and step an execution sees must make exactly `out_dim` numbers, as in
MAX: else the execution raises.

>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.int64, ["batch", "seq"])]) as g:
...     positions = range(0, g.inputs[0].shape[1], dtype=DType.int64, device=DeviceRef.CPU())
>>> positions.shape
[Dim('seq')]
"""

from __future__ import annotations

import builtins
import math
import numbers
from typing import Any

import numpy as np

from ember.dtype import DType

from ..device import DeviceRef
from ..dim import Dim, DimLike, StaticDim
from ..errors import GraphTypeError
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .cast import cast
from .constant import _to_array
from .dim_binders import dim_binders
from .transfer import transfer_to

__all__ = ["RANGE", "range", "range_count", "range_values", "static_arg", "wrong_length"]

RANGE = Op("range")

_NAMES = ("start", "stop", "step")


def range(
    start: Any,
    stop: Any,
    step: Any = 1,
    out_dim: DimLike | None = None,
    *,
    dtype: DType,
    device: Any,
) -> TensorValue:
    """A rank-1 value of `dtype` on `device` (a `DeviceRef` or a driver device).

    A scalar graph value given as an end or step is cast to `dtype` and moved to `device`;
    numbers must fit `dtype` exactly (MAX casts them).

    Raises:
        TypeError: `dtype` is not a numeric DType, or an argument is not a number, dim or
            scalar graph value.
        GraphTypeError: a number does not fit `dtype` (also a `ValueError`, as MAX raises).
        ValueError: a graph value of rank above 0; a graph value without `out_dim`; a step of 0;
            a float with a symbolic dim; numbers or dims that make another length than
            `out_dim`; an `out_dim` symbol that no graph input binds.
    """
    if not isinstance(dtype, DType) or not (dtype.is_integral() or dtype.is_float()):
        raise TypeError(f"range: dtype must be an integer or float DType, got {dtype!r}")
    device = DeviceRef.from_device(device)
    graph = current_graph()
    inputs: list[TensorValue] = []
    args: list[Any] = []  # a number, a symbolic Dim, or ("input", position in inputs)
    for name, arg in zip(_NAMES, (start, stop, step), strict=True):
        if isinstance(arg, TensorValue):
            if arg.rank != 0:
                raise ValueError(
                    f"range expected scalar values as inputs! {name} is a value of {arg.shape}"
                )
            args.append(("input", len(inputs)))
            inputs.append(transfer_to(cast(arg, dtype), device))
        elif isinstance(arg, Dim | str):
            dim = Dim(arg)
            args.append(int(dim) if isinstance(dim, StaticDim) else dim)
        elif isinstance(arg, numbers.Real | np.generic) and not isinstance(arg, np.bool_):
            try:
                value = _to_array(arg, dtype).item()
            except GraphTypeError as exc:
                raise GraphTypeError(f"range: {name} {arg!r} does not fit {dtype!r}") from exc
            args.append(int(arg) if isinstance(arg, numbers.Integral) else value)
        else:
            raise TypeError(
                f"range: {name} must be a number, a dim or a scalar graph value, got {arg!r}"
            )
    if isinstance(args[2], int | float) and args[2] == 0:
        raise ValueError("range: step must not be 0")
    symbolic = [a for a in args if isinstance(a, Dim)]
    if symbolic and any(isinstance(a, float) for a in args):
        raise ValueError("range: a float cannot be combined with a symbolic dim; cast after")
    static = not inputs and not symbolic
    count = range_count(*(np.asarray(a).astype(dtype.to_numpy()) for a in args)) if static else 0
    if out_dim is None:
        if inputs:
            raise ValueError(
                "range: Dynamic ranges must provide an explicit out_dim (a start, stop or step "
                "given as a graph value: the length is known only at execution)"
            )
        if static and count < 0:
            raise ValueError(f"range: {start}, {stop} and {step} make no finite length")
        out_dim = count if static else _symbolic_length(*args)
    out_dim = Dim(out_dim)
    if static and isinstance(out_dim, StaticDim) and count != int(out_dim):
        raise wrong_length(count, int(out_dim))
    symbols = out_dim.symbols().union(*(a.symbols() for a in symbolic))
    inputs += dim_binders("range", graph, symbols, device, f"out_dim {out_dim}")
    result = TensorType(dtype, [out_dim], device)
    attrs = {"args": tuple(args), "out_dim": out_dim, "dtype": dtype}
    return graph.add_node(RANGE, inputs, attrs, [result])[0]


def _symbolic_length(start: Any, stop: Any, step: Any) -> Dim:
    """The number of values from ints and dims, `ceil((stop - start) / step)` as a dim; it must
    not be negative at execution (a range over a symbolic dim that runs backwards)."""
    if not isinstance(step, int):
        raise ValueError(f"range: with a symbolic dim, step must be an int; give out_dim ({step})")
    if step > 0:
        return Dim(stop - start) if step == 1 else (Dim(stop - start) + (step - 1)) // step
    return Dim(start - stop) if step == -1 else (Dim(start - stop) + (-step - 1)) // -step


def static_arg(arg: Any, bindings: dict[str, int], dtype: np.dtype) -> np.ndarray:
    """A number or dim argument as a scalar of `dtype`, dims at their sizes in `bindings`.

    Raises:
        ValueError: a dim's size does not fit `dtype`.
    """
    value = arg.evaluate(bindings) if isinstance(arg, Dim) else arg
    if isinstance(arg, Dim) and dtype.kind in "iu":
        info = np.iinfo(dtype)
        if not info.min <= value <= info.max:
            raise ValueError(f"range: {arg} is {value} at this execution, outside {dtype}")
    return np.asarray(value).astype(dtype)


def range_count(start: np.ndarray, stop: np.ndarray, step: np.ndarray) -> int:
    """How many values `start`, `stop` and `step` (already in the range's dtype) make: -1 for
    a step of 0, or a length that is not finite."""
    if step == 0:
        return -1
    if start.dtype.kind in "iu":
        return builtins.max(0, -((int(start) - int(stop)) // int(step)))
    span = (float(stop) - float(start)) / float(step)
    return builtins.max(0, math.ceil(span)) if math.isfinite(span) else -1


def range_values(
    start: Any, step: Any, count: int, dtype: np.dtype, xp: Any = np, wide: Any = np.int64
) -> Any:
    """``start + i * step`` for ``i < count`` in `dtype`, with `xp` numpy or `jax.numpy`;
    integers in `wide` arithmetic (wrapping where it must: the values fit `dtype`), floats in
    float32 (float64 for float64), rounded after the product and after the sum. (XLA's CPU
    compiler may fuse the two into one multiply-add where the ends are graph values: the last
    bit may differ there.)"""
    if dtype.kind in "iu":
        start, step = xp.asarray(start).astype(wide), xp.asarray(step).astype(wide)
        return (start + xp.arange(count, dtype=wide) * step).astype(dtype)
    work = np.float64 if dtype.itemsize == 8 else np.float32
    start, step = xp.asarray(start).astype(work), xp.asarray(step).astype(work)
    return (start + xp.arange(count, dtype=work) * step).astype(dtype)


def wrong_length(count: int, expected: int) -> ValueError:
    if expected < 0:
        return ValueError(
            f"range: its length is {expected} at this execution: a range whose length follows "
            "a symbolic dim must not run backwards"
        )
    if count < 0:
        return ValueError(
            "range: start, stop and step make no finite length (a step of 0, or an end that is "
            f"infinite or NaN); out_dim is {expected}"
        )
    return ValueError(
        f"range: start, stop and step make {count} values, but out_dim is {expected} "
        "(the length must match)"
    )
