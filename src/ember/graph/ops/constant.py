"""Constants, and turning anything value-like (arrays, scalars, weights) into a graph value.

>>> from ember.graph import Graph
>>> with Graph("c") as g:
...     c = constant([[1, 2], [3, 4]], DType.int32)
>>> c.shape, c.dtype, c.device
([Dim(2), Dim(2)], int32, DeviceRef.CPU(id=0))
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ember.dlpack import host_array
from ember.dtype import DType

from ..device import DeviceRef
from ..errors import GraphTypeError
from ..graph import Graph, current_graph
from ..op import Op
from ..type import TensorType
from ..value import BufferValue, TensorValue
from ..weight import Weight

__all__ = ["CONSTANT", "WEIGHT", "TensorValueLike", "as_value", "constant", "constant_external"]

CONSTANT = Op("constant", source=True)
WEIGHT = Op("weight", source=True)

TensorValueLike = TensorValue | Weight | np.ndarray | numbers.Number


def constant(
    value: Any, dtype: DType | None = None, device: DeviceRef | None = None
) -> TensorValue:
    """A tensor baked into the graph; `device` defaults to the CPU, as in MAX.

    Raises:
        TypeError: `value` is not numeric.
        GraphTypeError: `value` cannot be represented in `dtype` without loss (both a
            `TypeError` and, as MAX raises, a `ValueError`).
    """
    device = device if device is not None else DeviceRef.CPU()
    if not isinstance(device, DeviceRef):
        raise TypeError(f"constant: device must be a DeviceRef, got {device!r}")
    return _constant_node(current_graph(), _to_array(value, dtype), device)


def constant_external(name: str, type: TensorType, align: int | None = None) -> TensorValue:
    """MAX's weight declared by a type: the value of the array bound to `name` at `load`.
    Two declarations of one name and type are one weight.

    >>> with Graph("e") as g:
    ...     w = constant_external("w", TensorType(DType.float32, [2, 3]))
    ...     same = constant_external("w", TensorType(DType.float32, [2, 3]))
    >>> same is w, w.shape
    (True, [Dim(2), Dim(3)])

    Raises:
        TypeError: `type` is not a TensorType.
        ValueError: `name` is empty, the shape is symbolic, `align` is not a power of 2, or a
            weight of that name has another type.
    """
    if not isinstance(type, TensorType):
        raise TypeError(f"constant_external: type must be a TensorType, got {type!r}")
    weight = Weight(name, type.dtype, type.shape, type.device, None, align)
    return _weight_value(current_graph(), weight, alike=True)


def as_value(value: Any, graph: Graph | None = None) -> TensorValue:
    """The graph value for `value`: a value itself, a weight's node, or a new constant.

    Raises:
        TypeError: `value` is a Python scalar (its dtype is ambiguous), a buffer, or not
            value-like.
    """
    if isinstance(value, BufferValue):
        raise TypeError(
            f"{value!r} is a buffer: ember takes buffers as MAX's signal buffers, for the "
            "collectives and layers that take signal_buffers, and its ops read tensors"
        )
    if isinstance(value, TensorValue):
        return value
    graph = graph or current_graph()
    if isinstance(value, Weight):
        return _weight_value(graph, value)
    if isinstance(value, np.ndarray | np.generic):
        return _constant_node(graph, _to_array(value, None), DeviceRef.CPU())
    if (array := host_array(value)) is not None:  # a torch tensor, or another DLPack producer
        return _constant_node(graph, _to_array(array, None), DeviceRef.CPU())
    if isinstance(value, numbers.Number):
        raise TypeError(
            f"expected a TensorValue, Weight or array, got the Python {type(value).__name__} "
            f"{value!r}; wrap Python scalars with ops.constant(value, dtype)"
        )
    raise TypeError(
        "expected a TensorValue, Weight, numpy array or host DLPack tensor, got a "
        f"{type(value).__name__}"
    )


def _constant_node(graph: Graph, array: np.ndarray, device: DeviceRef) -> TensorValue:
    type_ = TensorType(DType.from_numpy(array.dtype), array.shape, device)
    return graph.add_node(CONSTANT, (), {"value": array}, [type_])[0]


def _to_array(value: Any, dtype: DType | None) -> np.ndarray:
    if not isinstance(value, np.ndarray | np.generic) and (array := host_array(value)) is not None:
        value = array  # an ember Tensor (MAX's Buffer), a torch tensor: its own dtype
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise GraphTypeError(f"constant: {value!r} is not a rectangular numeric array") from exc
    if array.dtype == object and dtype is not None and dtype.is_integral():
        info = np.iinfo(dtype.to_numpy())
        raise GraphTypeError(
            f"constant: {value!r} does not fit {dtype!r} ([{info.min}, {info.max}])"
        )
    if array.dtype.kind not in "biuf" and not _is_narrow_float(array.dtype):
        raise TypeError(f"constant: expected numbers, got an array of {array.dtype}")
    if dtype is None:
        if not isinstance(value, np.ndarray | np.generic):
            raise TypeError(f"constant: give a dtype for the Python value {value!r}")
        return array.copy()  # the graph keeps its value, whatever the caller later does
    if not isinstance(dtype, DType):
        raise TypeError(f"constant: dtype must be a DType, got {dtype!r}")
    target = dtype.to_numpy()
    with np.errstate(over="ignore", invalid="ignore"):
        converted = array.astype(target)
    if dtype.is_integral() and not np.array_equal(converted.astype(np.float64), array):
        raise GraphTypeError(f"constant: values of {array.dtype} do not fit {dtype!r} exactly")
    if dtype.is_float() and array.dtype != target and isinstance(value, np.ndarray | np.generic):
        # an array of another float type must fit; a Python float past the range is inf (MAX)
        wide = array.astype(np.float64)
        if np.any(np.isinf(converted.astype(np.float64)) & np.isfinite(wide)):
            raise GraphTypeError(f"constant: finite values of {array.dtype} overflow {dtype!r}")
    return converted


def _is_narrow_float(dtype: np.dtype) -> bool:
    try:
        return DType.from_numpy(dtype).is_float()
    except TypeError:
        return False


def _weight_value(graph: Graph, weight: Weight, alike: bool = False) -> TensorValue:
    """`weight`'s node; `alike`: a declaration of the same name, type and encoding is the
    same weight (within blocks, and for `constant_external`)."""
    if graph.root is not graph:  # a block's weights are the outermost graph's, captured
        outer = _weight_value(graph.parent, weight, alike=True)  # type: ignore[attr-defined]
        return graph.capture_weight(outer, weight)  # type: ignore[attr-defined]
    known = graph.weights.get(weight.name)
    if known is not None:
        declared, value = known
        if declared is weight or (alike and declared_alike(declared, weight)):
            return value  # MAX's blocks may each declare one checkpoint tensor
        raise ValueError(
            f"graph {graph.name!r}: a weight named {weight.name!r} already exists "
            f"({declared.dtype!r}{declared.shape}); two weights cannot share a name (a "
            "Module's load_state_dict() or state_dict() gives its layers' weights full names, "
            "such as 'up.weight')"
        )
    attrs = {"name": weight.name, "encoding": weight.quantization_encoding}
    value = graph.add_node(WEIGHT, (), attrs, [weight.type])[0]
    graph.weights[weight.name] = (weight, value)
    return value


def declared_alike(a: Weight, b: Weight) -> bool:
    """Whether two weights declare the same tensor: its name, type and encoding."""
    return (a.name, a.type, a.quantization_encoding) == (b.name, b.type, b.quantization_encoding)
