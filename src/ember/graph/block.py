"""`Block`: a graph nested in another, the body of a loop or a branch of a condition
(`ops.while_loop`, `ops.cond`).

A block's first inputs are its arguments (a loop's carried values; none for a branch). It may
use values of the graphs around it, as MAX's blocks do: each such value is captured once, as
a further input of the block, and the node that runs the block reads it from outside. Weights
used inside a block belong to the outermost graph, and are captured the same way.

>>> from ember.dtype import DType
>>> from ember.graph import Graph, TensorType, ops
>>> with Graph("g", input_types=[TensorType(DType.float32, [3])]) as g:
...     block = Block.build(g, "body", [TensorType(DType.float32, [3])],
...                         lambda x: x * g.inputs[0])
>>> len(block.inputs), block.captured == [g.inputs[0]]
(2, True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .graph import INPUT, Graph, Node
from .type import TensorType
from .value import TensorValue
from .weight import Weight

__all__ = ["Block", "with_blocks"]


class Block(Graph):
    """A nested graph; see the module's docstring."""

    def __init__(self, parent: Graph, name: str, arg_types: Iterable[TensorType]) -> None:
        super().__init__(name, input_types=arg_types)
        self.parent = parent
        self.arg_count = len(self.inputs)
        self.captured: list[TensorValue] = []
        """Values of the graphs around this one, in the order of the inputs that stand for
        them (after the arguments)."""
        self._inner: dict[int, TensorValue] = {}
        self.captured_weights: dict[int, Weight] = {}
        """The weights among the captured values, by the position of their input."""
        self.placeholders: dict[int, str] = {}
        """Weights (by `id`) that `ops.call`'s `prefix` names anew at each call, each with
        the rest of its name (`Module.build_subgraph`'s `weight_prefix` taken off)."""

    @classmethod
    def build(
        cls,
        parent: Graph,
        name: str,
        arg_types: Sequence[TensorType],
        fn: Callable[..., Any],
        qualified: bool = True,
    ) -> Block:
        """A block of ``parent`` whose outputs are what ``fn`` returns when called on the
        block's arguments (one value, an iterable of values, or None for none); named
        ``parent.name`` when ``qualified``."""
        block = cls(parent, f"{parent.name}.{name}" if qualified else name, arg_types)
        with block:
            result = fn(*block.inputs)
            if result is None:
                outputs: tuple = ()
            elif isinstance(result, TensorValue) or not isinstance(result, Iterable):
                outputs = (result,)
            else:
                outputs = tuple(result)
            block.output(*outputs)
        return block

    @property
    def root(self) -> Graph:
        return self.parent.root

    def capture(self, value: TensorValue, op: Any = "an op") -> TensorValue:
        """Raises ValueError: `value` belongs to no graph around this one (a sibling block's,
        or another graph's)."""
        if value.graph is self:
            return value
        around, graph = [], self.parent
        while graph is not None:
            around.append(graph)
            graph = getattr(graph, "parent", None)
        if not any(value.graph is g for g in around):
            raise ValueError(
                f"{op}: a value of graph {value.graph.name!r} was used in graph {self.name!r}; "
                "a block takes values of the graphs around it only"
            )
        outer = value if value.graph is self.parent else self.parent.capture(value, op)
        inner = self._inner.get(id(outer))
        if inner is None:
            [inner] = self.add_node(INPUT, (), {"index": len(self.inputs)}, [outer.type])
            self.inputs = (*self.inputs, inner)
            self.captured.append(outer)
            self._inner[id(outer)] = inner
        return inner

    def capture_weight(self, value: TensorValue, weight: Weight) -> TensorValue:
        """`capture` for a weight's value, noting which weight its input stands for."""
        inner = self.capture(value)
        self.captured_weights[inner.node.attrs["index"]] = weight
        return inner

    def __repr__(self) -> str:
        return f"Block({self.name!r})"


def with_blocks(nodes: Iterable[Node]) -> Iterator[Node]:
    """The nodes and, after each, the live nodes of the blocks it runs (recursively): what a
    backend checks of a whole graph."""
    for node in nodes:
        yield node
        for block in node.blocks:
            yield from with_blocks(block.live_nodes())
