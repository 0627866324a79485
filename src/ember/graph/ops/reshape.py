"""`reshape(x, shape)`: the same elements in a new shape; one dim may be -1.

>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.float32, ["batch", 4, 8])]) as g:
...     y = reshape(g.inputs[0], ["batch", -1])
>>> y.shape
[Dim('batch'), Dim(32)]
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from ember.dtype import DType  # noqa: F401 - used by the doctest

from ..dim import Dim, StaticDim, SymbolicDim
from ..graph import current_graph
from ..op import Op
from ..shape import Shape
from ..type import TensorType
from ..value import TensorValue
from .constant import as_value

__all__ = ["RESHAPE", "reshape", "reshaped"]

RESHAPE = Op("reshape", may_alias=True)


def reshape(x: Any, shape: Any) -> TensorValue:
    """Raises ValueError when the element counts cannot match or more than one dim is -1."""
    value = as_value(x)
    requested = list(shape)
    holes = [i for i, d in enumerate(requested) if isinstance(d, int) and d == -1]
    if len(holes) > 1:
        raise ValueError(f"reshape: at most one dim may be -1, got {requested}")
    known = Shape(d for i, d in enumerate(requested) if i not in holes)
    source = _factor(value.shape)
    target = _factor(known)
    if holes and (source is None or target is None or target[1] - source[1]):
        fill = _quotient(value.shape, known)  # expressions: `n * m` over `n` is `m`
        if fill is None:
            raise ValueError(f"reshape: cannot infer -1 from {value.shape} into {requested}")
        new_shape = Shape(fill if i in holes else d for i, d in enumerate(requested))
    elif holes:
        missing = source[1] - target[1]
        static = source[0] // target[0] if target[0] else 0
        if target[0] * static != source[0]:
            raise ValueError(f"reshape: {value.shape} cannot be viewed as {requested}")
        fill = Dim(static)
        for name, count in missing.items():
            for _ in range(count):
                fill = fill * SymbolicDim(name) if int(static) != 1 or fill != 1 else Dim(name)
        new_shape = Shape(fill if i in holes else d for i, d in enumerate(requested))
    else:
        new_shape = known
        empty = source is not None and target is not None and source[0] == target[0] == 0
        if source is not None and target is not None and source != target and not empty:
            raise ValueError(
                f"reshape: {value.shape} and {new_shape} hold different numbers of elements"
            )
    unknown = new_shape.symbols() - value.shape.symbols()
    if unknown:
        raise ValueError(
            f"reshape: {new_shape} names {', '.join(sorted(unknown))}, which no dim of "
            f"{value.shape} has; a new symbolic dim could never be bound"
        )
    result = TensorType(value.dtype, new_shape, value.device)
    return current_graph().add_node(RESHAPE, [value], {"shape": new_shape}, [result])[0]


def _quotient(source: Shape, known: Shape) -> Dim | None:
    """The dim that times `known`'s dims gives `source`'s element count, where it divides
    exactly; else None."""
    whole, part = math.prod(source, start=Dim(1)), math.prod(known, start=Dim(1))
    if part == Dim(0):
        return None
    fill = whole // part
    return fill if fill * part == whole else None


def _factor(shape: Shape) -> tuple[int, Counter] | None:
    """(product of static dims, multiset of symbols), or None when an algebraic dim hides it."""
    static, symbols = 1, Counter()
    for d in shape:
        if isinstance(d, StaticDim):
            static *= int(d)
        elif isinstance(d, SymbolicDim):
            symbols[d.name] += 1
        else:
            return None
    return static, symbols


def reshaped(x: Any, shape: Shape, bindings: dict[str, int]) -> Any:
    """`x` (a numpy or JAX array) in `shape` at this execution's sizes.

    Raises:
        ValueError: the sizes give another element count (dims the type rule could not
            compare, such as `n // 4`).
    """
    dims = shape.evaluate(bindings)
    if math.prod(dims) != math.prod(x.shape):
        raise ValueError(
            f"reshape: a value of shape {list(x.shape)} cannot be viewed as {shape} "
            f"({list(dims)} at this execution)"
        )
    return x.reshape(dims)
