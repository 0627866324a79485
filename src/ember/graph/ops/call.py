"""`call(subgraph, *args, prefix="")`: MAX's call of a subgraph (`Graph.add_subgraph`,
`Module.build_subgraph`): its outputs for these arguments, each placeholder weight named
``prefix`` plus its name (one layer's weights per call of one shared layer).

>>> from ember.dtype import DType
>>> from ember.graph import DeviceRef, Graph, TensorType, ops
>>> t = TensorType(DType.float32, [10])
>>> with Graph("main", input_types=[t]) as graph:
...     with graph.add_subgraph("add_one", input_types=[t]) as sub:
...         sub.output(sub.inputs[0] + ops.constant(1, DType.float32, device=DeviceRef.CPU()))
...     [y] = ops.call(sub, graph.inputs[0])
>>> y.type == t
True
"""

from __future__ import annotations

from typing import Any

from ..block import Block
from ..device import DeviceRef
from ..graph import current_graph
from ..op import Op
from ..value import TensorValue
from ..weight import Weight
from .constant import as_value, declared_alike
from .debug_print import token

__all__ = ["CALL", "call"]

CALL = Op("call", may_alias=True)
"""Inputs: the arguments, then one per value the subgraph captured (each placeholder weight
as its call's weight). A subgraph may return an argument as it is."""


def call(graph: Any, *args: Any, prefix: str = "") -> list[TensorValue]:
    """The subgraph's outputs for ``args``.

    Raises:
        TypeError: ``graph`` is not a subgraph, or ``prefix`` not a str.
        ValueError: the subgraph has no outputs yet, another number of arguments, or one of
            the wrong type; no prefix for a subgraph with placeholder weights (a prefix for
            one without them reads nothing, as in MAX).
    """
    if not isinstance(graph, Block):
        raise TypeError(f"call takes a subgraph (Graph.add_subgraph), got {graph!r}")
    if not isinstance(prefix, str):
        raise TypeError(f"call: prefix must be a str, got {prefix!r}")
    if graph.outputs is None:
        raise ValueError(f"call: subgraph {graph.name!r} has no outputs; call its output() first")
    declared = graph.inputs[: graph.arg_count]
    if len(args) != len(declared):
        raise ValueError(
            f"Expected {len(declared)} args to call to {graph.name}, got {len(args)}: "
            f"{graph.name}({', '.join(str(v.type) for v in declared)})"
        )
    if graph.placeholders and not prefix:
        raise ValueError(
            f"call: {graph.name} reads placeholder weights (build_subgraph's weight_prefix); "
            "pass prefix= the layer's prefix"
        )
    here = current_graph()
    values = [as_value(a, here) for a in args]
    for i, (value, param) in enumerate(zip(values, declared, strict=True)):
        if value.type != param.type:
            raise ValueError(
                f"call: argument {i} of {graph.name} has the wrong type: {value.type}, "
                f"expected {param.type}"
            )
    captured = []
    for position, outer in enumerate(graph.captured, start=graph.arg_count):
        weight = graph.captured_weights.get(position)
        rest = None if weight is None else graph.placeholders.get(id(weight))
        if rest is None:
            captured.append(outer)
        else:
            named = Weight(prefix + rest, weight.dtype, weight.shape, weight.device,
                           weight.quantization_encoding)  # fmt: skip
            known = here.root.weights.get(named.name)
            if known is not None and declared_alike(known[0], named):
                named = known[0]  # this call's weight is already in the graph
            captured.append(as_value(named, here))
    inputs, attrs = [*values, *captured], {"graph": graph}
    if not graph.outputs:  # run for its effects (prints): a token stands for the results
        here.add_node(CALL, inputs, attrs, [token(DeviceRef.CPU())])
        return []
    return list(here.add_node(CALL, inputs, attrs, [v.type for v in graph.outputs]))
