"""`shape_to_tensor(shape)`: the sizes of a shape's dims as an int64 value, symbolic dims
included (their sizes are those of the execution).

>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.float32, ["n", 4])]) as g:
...     sizes = shape_to_tensor(g.inputs[0].shape)
>>> sizes.shape, sizes.dtype, sizes.device
([Dim(2)], int64, DeviceRef.CPU(id=0))
"""

from __future__ import annotations

from ember.dtype import DType

from ..device import DeviceRef
from ..graph import current_graph
from ..op import Op
from ..shape import Shape, ShapeLike
from ..type import TensorType
from ..value import TensorValue
from .dim_binders import dim_binders

__all__ = ["SHAPE_TO_TENSOR", "shape_to_tensor"]

SHAPE_TO_TENSOR = Op("shape_to_tensor")


def shape_to_tensor(shape: ShapeLike) -> TensorValue:
    """A rank-1 int64 value on the CPU holding each dim's size, as MAX's op gives it.

    The node reads the CPU inputs of the graph whose axes name the shape's symbols: not their
    data, but so that it runs at each execution, once those symbols are bound.

    Raises:
        ValueError: a symbol is the plain dim of no CPU input's axis, so no execution binds it.
    """
    shape = Shape(shape)
    graph = current_graph()
    device = DeviceRef.CPU()
    binders = dim_binders("shape_to_tensor", graph, shape.symbols(), device, f"shape {shape}")
    result = TensorType(DType.int64, [len(shape)], device)
    return graph.add_node(SHAPE_TO_TENSOR, binders, {"shape": shape}, [result])[0]
