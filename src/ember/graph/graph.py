"""A graph records typed nodes while it is open; the engine compiles it once it has outputs.

>>> with Graph("double", input_types=[TensorType(DType.float32, ["n"])]) as g:
...     g.output(g.inputs[0] * 2)
>>> g.output_types
[TensorType(float32, [Dim('n')], cpu:0)]
>>> Graph("twice", lambda x: x + x, input_types=[TensorType(DType.int32, [3])]).output_types
[TensorType(int32, [Dim(3)], cpu:0)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from ember.dtype import DType  # noqa: F401 - used by the doctest

from .op import Op
from .type import BufferType, TensorType, Typed
from .value import BufferValue, TensorValue

__all__ = ["INPUT", "DevicePlacementPolicy", "Graph", "Node", "current_graph"]

INPUT = Op("input", source=True)


class DevicePlacementPolicy(Enum):
    """MAX's choice of what to do when an op with only CPU kernels moves a value to the CPU
    (transfer silently, warn, or raise). Ember's ops run where their values live, so no op
    moves one implicitly; a graph takes the policy and has nothing for it to report."""

    Ignore = "ignore"
    Warn = "warn"
    Error = "error"


_open_graphs: list[Graph] = []


@dataclass(eq=False)
class Node:
    """One operation: its name, input values, attributes and result types."""

    op: Op
    inputs: tuple[TensorValue, ...]
    attrs: dict[str, Any]
    result_types: tuple[TensorType, ...]
    results: tuple[TensorValue, ...] = field(default=(), repr=False)

    @property
    def blocks(self) -> list[Graph]:
        """The graphs nested in this node that it runs (a loop's, a branch's, a subgraph)."""
        return [v for v in self.attrs.values() if isinstance(v, Graph)]

    @property
    def has_effect(self) -> bool:
        """Whether running the node acts outside the graph: its op's `effect`, or a block it
        runs that has such a node."""
        return self.op.effect or any(block.effects for block in self.blocks)

    @property
    def binds_dims(self) -> bool:
        """Whether the node binds dim names at execution (a `rebind`'s new names, a `nonzero`'s
        new count), so that it runs at each execute and is never folded at load."""
        return bool(self.attrs.get("binds"))

    def describe(self, names: dict[int, str]) -> str:
        outs = ", ".join(f"{names[id(v)]}: {_short(v.type)}" for v in self.results)
        args = [names[id(v)] for v in self.inputs]
        args += [f"{k}={_attr(v)}" for k, v in self.attrs.items()]
        return f"{outs} = {self.op}({', '.join(args)})"


class _Current:
    """`Graph.current`: the innermost open graph, as MAX's class property gives it."""

    def __get__(self, instance: object, owner: type) -> Graph:
        return current_graph()


class Graph:
    """A computation under construction; use it as a context manager."""

    current = _Current()

    def __init__(
        self,
        name: str,
        forward: Callable[..., Any] | None = None,
        input_types: Iterable[TensorType] = (),
        path: Any = None,
        *args: Any,
        custom_extensions: Iterable[Any] = (),
        context: Any = None,
        kernel_library: Any = None,
        module: Any = None,
        strict_device_placement: DevicePlacementPolicy = DevicePlacementPolicy.Warn,
        **kwargs: Any,
    ) -> None:
        """With `forward` (a module or any callable), the graph is built at once: `forward`
        is called on the inputs, then `args` and `kwargs`, inside the graph, and what it returns
        (a value, any iterable of values such as a list or a generator, or None) becomes the
        outputs. Without `forward`,
        `args` and `kwargs` are ignored, as MAX ignores them (its tests pass `output_types=`).
        MAX's own parameters are taken where ember has nothing for them to do: `path` (a saved
        MLIR graph), `custom_extensions` (Mojo kernels), `context`, `kernel_library` and
        `module` (MLIR objects) must be left unset.

        `strict_device_placement` (a `DevicePlacementPolicy`) is kept, and has nothing to do.

        Raises:
            TypeError: `forward` is not callable, an input type is not a TensorType, or the
                policy is not a `DevicePlacementPolicy`.
            NotImplementedError: one of MAX's MLIR parameters is set.
        """
        if not isinstance(strict_device_placement, DevicePlacementPolicy):
            raise TypeError(
                "strict_device_placement must be a DevicePlacementPolicy, got "
                f"{strict_device_placement!r}"
            )
        self.strict_device_placement = strict_device_placement
        unsupported = {
            "path": path is not None,
            "custom_extensions": bool(list(custom_extensions)),
            "context": context is not None,
            "kernel_library": kernel_library is not None,
            "module": module is not None,
        }
        for parameter, given in unsupported.items():
            if given:
                raise NotImplementedError(
                    f"Graph({parameter}=...): ember builds graphs in Python and runs its own "
                    "kernels; it has no MLIR graphs, contexts or Mojo extensions to load"
                )
        if not isinstance(name, str):
            raise TypeError(f"a graph's name is a str, got {name!r}")
        if forward is not None and not callable(forward):
            raise TypeError(
                f"forward must be callable (a module or function), got {type(forward).__name__}; "
                "pass the input types as input_types=[...]"
            )
        self.name = name
        self.nodes: list[Node] = []
        self.weights: dict[str, tuple[Any, TensorValue]] = {}
        self.outputs: list[TensorValue] | None = None
        self.inputs: tuple[TensorValue, ...] = ()
        inputs = []
        for index, input_type in enumerate(input_types):
            if not isinstance(input_type, TensorType):
                raise TypeError(f"input {index} must be a TensorType, got {input_type!r}")
            inputs.append(self.add_node(INPUT, (), {"index": index}, [input_type])[0])
        self.inputs = tuple(inputs)
        if forward is not None:
            with self:
                result = forward(*self.inputs, *args, **kwargs)
                self.output(*(() if result is None else _as_tuple(result)))

    def __enter__(self) -> Graph:
        _open_graphs.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _open_graphs.remove(self)

    def add_node(
        self,
        op: Op,
        inputs: Sequence[TensorValue],
        attrs: dict[str, Any],
        result_types: Sequence[TensorType],
    ) -> tuple[TensorValue, ...]:
        """Append a node whose inputs belong to this graph (a block's may belong to the
        graphs it is nested in: they are captured); return its result values."""
        if self.outputs is not None:
            raise ValueError(f"graph {self.name!r} already has its outputs; add no more nodes")
        inputs = [v if v.graph is self else self.capture(v, op) for v in inputs]
        node = Node(op, tuple(inputs), dict(attrs), tuple(result_types))
        node.results = tuple(
            (BufferValue if isinstance(t, BufferType) else TensorValue)(self, node, i, t)
            for i, t in enumerate(result_types)
        )
        self.nodes.append(node)
        return node.results

    @property
    def effects(self) -> list[Node]:
        """Nodes that run though no output reads them (`Node.has_effect`), in order."""
        return [node for node in self.nodes if node.has_effect]

    def add_subgraph(
        self,
        name: str,
        forward: Callable[..., Any] | None = None,
        input_types: Iterable[TensorType] = (),
        path: Any = None,
        custom_extensions: Iterable[Any] = (),
        devices: Iterable[Any] = (),
    ) -> Graph:
        """A graph nested in this one, to be called with `ops.call` (MAX's subgraphs: a block
        defined once and called where it repeats, a transformer layer per layer). Built by
        `forward` at once, or inside ``with subgraph:`` ending in ``subgraph.output(...)``.
        Weights it uses are this graph's; `ops.call`'s `prefix` names them anew per call for
        a module's `build_subgraph`. `devices` is MAX's and has nothing to do.

        Raises:
            NotImplementedError: `path` or `custom_extensions` is set (MLIR and Mojo).
        """
        from .block import Block

        if path is not None or list(custom_extensions):
            raise NotImplementedError(
                "add_subgraph(path=..., custom_extensions=...): ember builds graphs in Python "
                "and has no MLIR graphs or Mojo extensions to load"
            )
        if forward is None:
            return Block(self, name, input_types)
        return Block.build(self, name, list(input_types), forward, qualified=False)

    @property
    def root(self) -> Graph:
        """The graph this one is nested in, outermost (itself, unless it is a block)."""
        return self

    def capture(self, value: TensorValue, op: Any = "an op") -> TensorValue:
        """`value` as a value of this graph: only a block (`ember.graph.block.Block`) takes
        values of the graphs around it.

        Raises:
            ValueError: `value` belongs to another graph.
        """
        raise ValueError(
            f"{op}: a value of graph {value.graph.name!r} was used in graph "
            f"{self.name!r}; values cannot cross graphs"
        )

    def add_weight(self, weight: Any, force_initial_weight_on_host: bool = True) -> TensorValue:
        """`weight`'s value in this graph, as MAX's `Graph.add_weight` gives it: added on first
        use, the same value when the same `Weight` comes again. Ops add the weights they are
        given by themselves; this is for code that adds them first. MAX's
        `force_initial_weight_on_host` is accepted and has nothing to do: `load` puts each
        weight on its declared device.

        Raises:
            TypeError: `weight` is not a `Weight`.
            ValueError: another weight of this graph has the same name.
        """
        from .ops.constant import as_value
        from .weight import Weight

        if not isinstance(weight, Weight):
            raise TypeError(f"add_weight takes a Weight, got a {type(weight).__name__}")
        return as_value(weight, self)

    def output(self, *values: object) -> None:
        """Mark the graph's results; the graph is complete after this."""
        from .ops.constant import as_value

        if self.outputs is not None:
            raise ValueError(f"graph {self.name!r} already has outputs")
        outs = [as_value(v, self) for v in values]
        self.outputs = [out if out.graph is self else self.capture(out, "output") for out in outs]

    def live_nodes(self) -> list[Node]:
        """The nodes the outputs and the effects (`effects`) depend on, in the order they were
        added (a topological order).

        Raises:
            ValueError: the graph has no outputs yet.
        """
        if self.outputs is None:
            raise ValueError(f"graph {self.name!r} has no outputs; call graph.output(...) first")
        seen: set[int] = set()
        stack = [v.node for v in self.outputs] + self.effects
        while stack:
            node = stack.pop()
            if id(node) not in seen:
                seen.add(id(node))
                stack.extend(v.node for v in node.inputs)
        return [n for n in self.nodes if id(n) in seen]

    @property
    def output_types(self) -> list[TensorType]:
        if self.outputs is None:
            raise ValueError(f"graph {self.name!r} has no outputs yet; call output() first")
        return [v.type for v in self.outputs]

    def __str__(self) -> str:
        names: dict[int, str] = {}
        for node in self.nodes:
            for value in node.results:
                names[id(value)] = f"%{len(names)}"
        head = f"graph {self.name}(" + ", ".join(names[id(v)] for v in self.inputs) + ")"
        lines = [head]
        for node in self.nodes:
            lines.append("  " + node.describe(names))
            for block in node.blocks:
                lines.extend("    " + line for line in str(block).splitlines())
        if self.outputs is not None:
            lines.append("  output " + ", ".join(names[id(v)] for v in self.outputs))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, nodes={len(self.nodes)})"


def current_graph() -> Graph:
    """The innermost open graph.

    Raises:
        ValueError: no graph is open.
    """
    if not _open_graphs:
        raise ValueError("no Graph is open: build ops inside `with Graph(...) as graph:`")
    return _open_graphs[-1]


def _as_tuple(result: Any) -> tuple[Any, ...]:
    """`forward`'s outputs: the items of an iterable of them (a list, a tuple, a generator),
    as MAX takes any; one value, weight or array is one output."""
    one = (TensorValue, Typed, np.ndarray, np.generic, str, bytes)
    if isinstance(result, one) or not isinstance(result, Iterable):
        return (result,)
    return tuple(result)


def _short(t: TensorType) -> str:
    return f"{t.dtype!r}[{', '.join(str(d) for d in t.shape)}]@{t.device}"


def _attr(value: Any) -> str:
    text = repr(value) if not hasattr(value, "shape") else f"<array {value.shape}>"
    return text if len(text) <= 60 else text[:57] + "..."
