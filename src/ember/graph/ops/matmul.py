"""`matmul(lhs, rhs)`: the matrix product over the last two axes, MAX's semantics.

>>> from ember.graph import Graph, TensorType, Weight
>>> table = Weight("table", DType.bfloat16, [1000, 64])
>>> with Graph("g", input_types=[TensorType(DType.float32, ["batch", 64])]) as g:
...     logits = matmul(g.inputs[0], transpose(table, 0, 1))
>>> logits.shape, logits.dtype
([Dim('batch'), Dim(1000)], float32)
"""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..dim import StaticDim
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .broadcasting import broadcast_shapes
from .cast import cast
from .constant import as_value
from .promotion import promoted_dtype
from .transpose import transpose  # noqa: F401 - used by the doctest

__all__ = ["MATMUL", "NARROW_FLOATS", "matmul", "matmul_dtype"]

MATMUL = Op("matmul")

NARROW_FLOATS = (DType.bfloat16, DType.float16)
"""The `rhs` dtypes a float32 `lhs` multiplies without a cast: each element widens exactly."""


def matmul(lhs: Any, rhs: Any) -> TensorValue:
    """The product of the innermost two axes of `lhs` `(..., M, K)` and `rhs` `(..., K, N)`;
    the other (batch) axes broadcast. A 1-D `lhs` is a `(1, K)` row and a 1-D `rhs` a `(K, 1)`
    column, and their added axes leave the result, as in MAX and numpy.

    Two dtypes meet as MAX promotes them (`promotion.promoted_dtype`: bfloat16 with float32
    gives float32, float32 with int32 an error), the other operand cast. A float32 `lhs` takes
    a bfloat16 or float16 `rhs` as it is, without a cast: its elements widen exactly as they
    are read, so an LM head (`hidden @ table.T`) never copies a narrow table to float32.
    Floats accumulate in float32 (float64 in float64).

    Raises:
        TypeError: neither dtype holds the other's values, or they are bool.
        ValueError: the inner dims differ, the batch axes do not broadcast, an operand is a
            scalar, or the two live on different devices.
    """
    left, right = as_value(lhs), as_value(rhs)
    if left.device != right.device:
        raise ValueError(
            f"matmul: lhs and rhs must be on the same device; lhs lives on {left.device} and "
            f"rhs on {right.device}: move one with .to(device)"
        )
    dtype = matmul_dtype(left.dtype, right.dtype)
    if left.rank == 0 or right.rank == 0:
        raise ValueError(
            f"matmul: operands must have rank 1 or more, got shapes {left.shape} and {right.shape}"
        )
    left_shape = list(left.shape) if left.rank > 1 else [StaticDim(1), *left.shape]
    right_shape = list(right.shape) if right.rank > 1 else [*right.shape, StaticDim(1)]
    inner, other = left_shape[-1], right_shape[-2]
    if inner != other:
        raise ValueError(
            f"matmul: the inner dims differ: lhs {left.shape} has {inner!r} and rhs "
            f"{right.shape} has {other!r} (lhs (..., M, K) times rhs (..., K, N))"
        )
    batch = broadcast_shapes(left_shape[:-2], right_shape[:-2])
    shape = [*batch]
    if left.rank > 1:
        shape.append(left_shape[-2])
    if right.rank > 1:
        shape.append(right_shape[-1])
    if not _read_as_stored(left.dtype, right.dtype):
        left, right = cast(left, dtype), cast(right, dtype)  # once the shapes are known good
    result = TensorType(dtype, shape, left.device)
    return current_graph().add_node(MATMUL, [left, right], {}, [result])[0]


def matmul_dtype(lhs: DType, rhs: DType) -> DType:
    """The result dtype of `lhs @ rhs`.

    Raises:
        TypeError: neither dtype holds the other's values, or they are bool.
    """
    if lhs is DType.bool or rhs is DType.bool:
        raise TypeError(f"matmul: bool operands have no product, got {lhs!r} and {rhs!r}")
    if lhs is rhs:
        return lhs
    if _read_as_stored(lhs, rhs):
        return DType.float32
    return promoted_dtype("matmul", lhs, rhs)


def _read_as_stored(lhs: DType, rhs: DType) -> bool:
    """A float32 `lhs` and a narrow float `rhs`, which widens exactly as it is read."""
    return lhs is DType.float32 and rhs in NARROW_FLOATS
