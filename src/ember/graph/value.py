"""A value flowing through a graph, with Python operators that add ops to its graph.

>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.float32, ["batch", 4])]) as g:
...     x = g.inputs[0]
...     y = (x + 1.0)[:, 1:3]
>>> y.shape, y.dtype, y.device
([Dim('batch'), Dim(2)], float32, DeviceRef.CPU(id=0))
>>> with Graph("d", input_types=[TensorType(DType.int32, [4])]) as g:
...     z = x.shape[1] * g.inputs[0]
>>> z.shape, z.dtype
([Dim(4)], int32)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ember.dtype import DType

from .device import DeviceRef
from .dim import Dim, StaticDim
from .shape import Shape, ShapeLike
from .type import TensorType, Typed

if TYPE_CHECKING:
    from .graph import Graph, Node

__all__ = ["BufferValue", "TensorValue", "Value"]


class _ValueOf(type):
    """`TensorValue(x)` with one argument converts `x` (a weight, an array; a dim: its size at
    execution, an int64 scalar on the CPU; a shape: its sizes, int64 on the CPU), as in MAX."""

    def __call__(cls, *args: Any) -> TensorValue:
        if len(args) == 1:
            from .ops.constant import as_value
            from .ops.shape_to_tensor import shape_to_tensor

            if isinstance(args[0], Dim):
                return shape_to_tensor([args[0]]).reshape([])
            if isinstance(args[0], Shape):
                return shape_to_tensor(args[0])
            return as_value(args[0])
        return super().__call__(*args)


class TensorValue(Typed, metaclass=_ValueOf):
    """The i-th result of a node; build new values with `ember.graph.ops` or operators."""

    __slots__ = ("graph", "index", "node", "type")
    __array_priority__ = 1000  # numpy defers `array + value` to us

    def __init__(self, graph: Graph, node: Node, index: int, type: TensorType) -> None:
        self.graph, self.node, self.index, self.type = graph, node, index, type

    def __repr__(self) -> str:
        return f"TensorValue({self.dtype!r}, {self.shape}, {self.device}, op={self.node.op})"

    def __bool__(self) -> bool:
        raise TypeError(
            "a graph value has no truth value when the graph is built: join conditions with "
            "& and |, choose values with ops.select"
        )

    def __iter__(self) -> Any:
        raise TypeError(
            f"a graph value is not iterable (as in MAX): index it, x[i], for each row ({self.type})"
        )

    def __contains__(self, item: object) -> bool:
        raise TypeError("a graph value is not a container (as in MAX); compare with ops.equal")

    def to(self, device: DeviceRef) -> TensorValue:
        from .ops.transfer import transfer_to

        return transfer_to(self, device)

    def cast(self, dtype: DType) -> TensorValue:
        from .ops.cast import cast

        return cast(self, dtype)

    def reshape(self, shape: ShapeLike) -> TensorValue:
        from .ops.reshape import reshape

        return reshape(self, shape)

    def transpose(self, dim_1: int, dim_2: int) -> TensorValue:
        from .ops.transpose import transpose

        return transpose(self, dim_1, dim_2)

    def print(self, label: str = "debug_tensor") -> None:
        """Print this value's data each time the graph runs (`ops.print`)."""
        from .ops.debug_print import print as debug_print

        debug_print(self, label)

    def broadcast_to(self, shape: ShapeLike) -> TensorValue:
        from .ops.broadcast_to import broadcast_to

        return broadcast_to(self, shape)

    def rebind(self, shape: ShapeLike, message: str = "") -> TensorValue:
        from .ops.rebind import rebind

        return rebind(self, shape, message)

    def argmax(self, axis: int = -1) -> TensorValue:
        from .ops.argmax import argmax

        return argmax(self, axis)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> TensorValue:
        from .ops.rearrange import flatten

        return flatten(self, start_dim, end_dim)

    def permute(self, dims: list[int]) -> TensorValue:
        from .ops.transpose import permute

        return permute(self, dims)

    def max(self, axis: int = -1) -> TensorValue:
        from .ops.reduction import reduce_max

        return reduce_max(self, axis)

    def min(self, axis: int = -1) -> TensorValue:
        from .ops.reduction import reduce_min

        return reduce_min(self, axis)

    def mean(self, axis: int = -1) -> TensorValue:
        from .ops.reduction import reduce_mean

        return reduce_mean(self, axis)

    def var(self, axis: int = -1) -> TensorValue:
        """The population variance along `axis` (MAX's: the mean squared distance from the
        mean), the axis kept with size 1.

        Raises:
            TypeError: bool values.
        """
        if self.dtype is DType.bool:
            raise TypeError("var: variance is undefined for bool values")
        deviation = self - self.mean(axis)
        return (deviation * deviation).mean(axis)

    def stdev(self, axis: int = -1) -> TensorValue:
        """The square root of `var` along `axis`."""
        from .ops.unary import sqrt

        return sqrt(self.var(axis))

    @property
    def tensor(self) -> TensorValue:
        """This value, as MAX's ``Value.tensor`` gives a value known to be a tensor."""
        return self

    @property
    def buffer(self) -> BufferValue:
        """MAX's ``Value.buffer``, for a graph input of a `BufferType`.

        Raises:
            TypeError: this value is a tensor.
        """
        raise TypeError(f"{self!r} is a tensor, not a buffer")

    @property
    def T(self) -> TensorValue:
        """The last two axes swapped."""
        return self.transpose(-1, -2)

    def __matmul__(self, rhs: Any) -> TensorValue:
        from .ops.matmul import matmul

        return matmul(self, rhs)

    def __rmatmul__(self, lhs: Any) -> TensorValue:
        from .ops.matmul import matmul

        return matmul(lhs, self)

    def __getitem__(self, index: Any) -> TensorValue:
        from .ops.slice import slice_tensor

        return slice_tensor(self, index)

    def __neg__(self) -> TensorValue:
        from .ops import elementwise

        return elementwise.negate(self)

    def __invert__(self) -> TensorValue:
        from .ops.logical import logical_not

        return logical_not(self)


def _binary(module: str, name: str, reverse: bool = False):
    def method(self: TensorValue, other: Any) -> TensorValue:
        import importlib

        fn = getattr(importlib.import_module(f"ember.graph.ops.{module}"), name)
        if isinstance(other, Dim):
            other = _dim_operand(other, self)
        return fn(other, self) if reverse else fn(self, other)

    method.__name__ = name
    return method


def _dim_operand(dim: Dim, like: TensorValue) -> int | TensorValue:
    """A dim in arithmetic with a value: a static dim is its int, which takes the value's dtype
    as any Python int does; a symbolic one is its size at execution, as MAX gives it
    (`shape_to_tensor`), in the value's dtype and on its device."""
    if isinstance(dim, StaticDim):
        return dim.dim
    from .ops.shape_to_tensor import shape_to_tensor

    size = shape_to_tensor([dim]).reshape([])
    if size.device != like.device:
        size = size.to(like.device)
    return size if size.dtype is like.dtype else size.cast(like.dtype)


for _dunder, _module, _fn in [
    ("add", "elementwise", "add"),
    ("sub", "elementwise", "sub"),
    ("mul", "elementwise", "mul"),
    ("truediv", "elementwise", "div"),
    ("floordiv", "elementwise", "floor_div"),
    ("mod", "elementwise", "mod"),
    ("pow", "elementwise", "pow"),
    ("and", "logical", "logical_and"),
    ("or", "logical", "logical_or"),
    ("xor", "logical", "logical_xor"),
]:
    setattr(TensorValue, f"__{_dunder}__", _binary(_module, _fn))
    setattr(TensorValue, f"__r{_dunder}__", _binary(_module, _fn, reverse=True))

for _dunder, _fn in [
    ("eq", "equal"),
    ("ne", "not_equal"),
    ("lt", "less"),
    ("le", "less_equal"),
    ("gt", "greater"),
    ("ge", "greater_equal"),
]:
    setattr(TensorValue, f"__{_dunder}__", _binary("comparison", _fn))
TensorValue.__hash__ = object.__hash__  # type: ignore[method-assign]


class BufferValue(TensorValue):
    """A graph input of a `BufferType`: MAX's signal buffers, given to the collectives and
    layers that take `signal_buffers`. No op reads it (see `BufferType`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"BufferValue({self.dtype!r}, {self.shape}, {self.device})"

    @property
    def tensor(self) -> TensorValue:
        """Raises TypeError: a buffer value is not a tensor."""
        raise TypeError(f"{self!r} is a buffer, not a tensor")

    @property
    def buffer(self) -> BufferValue:
        return self


Value = TensorValue
"""MAX's base of graph values, for annotations and `isinstance`: every ember value (a
`BufferValue` too) is a `TensorValue`; `.tensor` and `.buffer` say which it is."""
