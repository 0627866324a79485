"""`print(value, label)`: MAX's debug print. A tensor's values (or a string) are printed each
time the model runs, as the session's `set_debug_print_options` says
(`ember.engine.debug_print`), though no output reads them.

>>> from ember.dtype import DType
>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.float32, [3])]) as g:
...     print(g.inputs[0] * 2, label="doubled")
...     g.output(g.inputs[0])
>>> [node.op.name for node in g.live_nodes()]
['input', 'constant', 'mul', 'print']
"""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..device import DeviceRef
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from .constant import as_value

__all__ = ["PRINT", "print", "token"]

PRINT = Op("print", effect=True)
"""Its one result is a token (a bool scalar on the printed value's device, or the CPU for a
string) that no op reads: the print runs for its effect (the graph's `effects` keep it)."""


def print(value: Any, label: str = "debug_tensor") -> None:
    """Print ``value`` (a tensor, or a str) when the graph runs, named ``label``.

    Raises:
        TypeError: ``label`` is not a str, or ``value`` is neither a str nor a tensor.
        ValueError: ``label`` is not usable as a file name.
    """
    if not isinstance(label, str):
        raise TypeError(f"print: label must be a str, got {label!r}")
    if not label or label in (".", "..") or "/" in label or "\\" in label or "\0" in label:
        raise ValueError(
            f"print: label {label!r} must be usable as a file name (the BINARY style writes "
            "one per label): not empty, no '/' or '\\'"
        )
    graph = current_graph()
    if isinstance(value, str):
        graph.add_node(PRINT, (), {"label": label, "text": value}, [token(DeviceRef.CPU())])
        return
    tensor = as_value(value, graph)
    graph.add_node(PRINT, [tensor], {"label": label, "text": None}, [token(tensor.device)])


def token(device: DeviceRef) -> TensorType:
    """The type of an effect's token: what a node that runs only for its effect returns."""
    return TensorType(DType.bool, [], device)
