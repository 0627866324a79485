"""Building graphs: types, values, weights and the ops that combine them."""

from . import ops
from .device import DeviceKind, DeviceRef
from .dim import AlgebraicDim, Dim, DimLike, StaticDim, SymbolicDim
from .graph import DevicePlacementPolicy, Graph, Node, current_graph
from .op import Op, all_ops
from .quantization import BlockParameters, QuantizationEncoding
from .shape import Shape, ShapeLike
from .type import BufferType, TensorType, Type
from .value import BufferValue, TensorValue, Value
from .weight import Weight

TensorValueLike = ops.TensorValueLike

__all__ = [
    "AlgebraicDim",
    "BlockParameters",
    "BufferType",
    "BufferValue",
    "DeviceKind",
    "DevicePlacementPolicy",
    "DeviceRef",
    "Dim",
    "DimLike",
    "Graph",
    "Node",
    "Op",
    "QuantizationEncoding",
    "Shape",
    "ShapeLike",
    "StaticDim",
    "SymbolicDim",
    "TensorType",
    "TensorValue",
    "TensorValueLike",
    "Type",
    "Value",
    "Weight",
    "all_ops",
    "current_graph",
    "ops",
]
