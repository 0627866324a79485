"""Which graph inputs bind a set of symbolic dims: an op whose result depends on the sizes of
an execution (not on any value's data) reads those inputs, so that it runs at each execution,
once the sizes are bound, and is never folded into a constant at load. An input on another
device stands in through an empty copy of it moved to the op's device (no data travels)."""

from __future__ import annotations

import weakref

from ..device import DeviceRef
from ..dim import SymbolicDim
from ..graph import Graph
from ..value import TensorValue

__all__ = ["dim_binders", "full_binders"]


def dim_binders(
    op: str, graph: Graph, symbols: set[str], device: DeviceRef, where: str
) -> list[TensorValue]:
    """The inputs of `graph` on `device` that have one of `symbols` as a plain axis dim (or an
    empty copy, on `device`, of an input elsewhere that has).

    Raises:
        ValueError: a symbol is the plain dim of no such input, so no execution binds it;
            `where` says what named it.
    """
    binders, unbound = _binders(graph, symbols, device)
    if unbound:
        raise ValueError(
            f"{op}: {', '.join(sorted(unbound))} is the dim of no axis of a graph input on "
            f"{device}, so no execution binds it there ({where}); ember binds symbolic dims "
            "from the graph's inputs (inside a loop, branch or subgraph: the outermost graph's)"
        )
    return binders


def full_binders(graph: Graph, symbols: set[str], device: DeviceRef) -> list[TensorValue] | None:
    """`dim_binders`, or None where some symbol is the dim of no input (a name only)."""
    binders, unbound = _binders(graph, symbols, device)
    return None if unbound else binders


def _binders(
    graph: Graph, symbols: set[str], device: DeviceRef
) -> tuple[list[TensorValue], set[str]]:
    inputs = graph.root.inputs  # a block's sizes are its outermost graph's, bound by its inputs
    binders = [v for v in inputs if v.device == device and symbols & _plain_symbols(v)]
    unbound = symbols.difference(*(_plain_symbols(v) for v in binders))
    elsewhere = []
    for value in inputs:
        if value.device != device and unbound & _plain_symbols(value):
            elsewhere.append(value)
            unbound -= _plain_symbols(value)
    if unbound:  # no copies made for a caller that refuses, or takes the dims as names
        return binders, unbound
    return binders + [_empty_copy(graph, v, device) for v in elsewhere], unbound


_EMPTY_COPIES: weakref.WeakKeyDictionary[Graph, dict] = weakref.WeakKeyDictionary()


def _empty_copy(graph: Graph, value: TensorValue, device: DeviceRef) -> TensorValue:
    """`value` with a new leading axis of 0 elements (its own axes, and their dims, kept), on
    `device`: made once per graph, input and device."""
    from .squeeze import unsqueeze

    copies = _EMPTY_COPIES.setdefault(graph, {})
    key = (id(value), device)
    if key not in copies:
        copies[key] = unsqueeze(value, 0)[0:0].to(device)
    return copies[key]


def _plain_symbols(value: TensorValue) -> set[str]:
    return {d.name for d in value.shape if isinstance(d, SymbolicDim)}
