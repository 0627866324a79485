"""Graph → plan, once per `load`: live nodes in order, everything computed from weights and
constants alone evaluated at load (views stay views; lookups still run per execute), gather →
dequantize → cast chains fused into one kernel call, and every remaining node lowered to a
step. `execute` then only checks inputs and runs the steps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ember.graph import Graph, Node, TensorType, TensorValue

from .backends.native.lowering import Decode, StepFn
from .buffer_pool import BufferPool
from .runtime import Runtime
from .weights import bind_weights

__all__ = ["Plan", "Step", "compile_graph"]


@dataclass(frozen=True)
class Step:
    run: StepFn
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    op: str


@dataclass
class Plan:
    """Slots hold values while a model executes; some are filled once, at load."""

    slot_count: int
    input_slots: tuple[int, ...]
    input_types: tuple[TensorType, ...]
    output_slots: tuple[int, ...]
    output_types: tuple[TensorType, ...]
    steps: list[Step]
    preset: dict[int, np.ndarray] = field(default_factory=dict)
    borrowed: frozenset[int] = frozenset()
    """Slots whose value may be an input's, a weight's or a constant's memory (or a view of it):
    an output from one of them is copied before the caller gets it."""


def compile_graph(graph: Graph, registry: Mapping[str, Any] | None, backend: Any) -> Plan:
    """Raises ValueError when the graph has no outputs or uses a device the backend lacks, and
    what `bind_weights` raises for the weights its outputs read."""
    if graph.outputs is None:
        raise ValueError(f"graph {graph.name!r} has no outputs; call graph.output(...) first")
    live = _live_nodes(graph)
    _check_devices(live, backend)
    weights = bind_weights(graph, registry, [n.attrs["name"] for n in live if n.op == "weight"])
    consumers = _consumers(live, graph.outputs)
    slots: dict[int, int] = {}

    def slot_of(value: TensorValue) -> int:
        return slots.setdefault(id(value), len(slots))

    for value in graph.inputs:  # inputs the outputs ignore are still passed and checked
        slot_of(value)
    preset: dict[int, np.ndarray] = {}
    steps: list[Step] = []
    fused_away: set[int] = set()
    borrowed: set[int] = set()  # slots that may share memory with inputs, weights or constants
    for node in live:
        if id(node) in fused_away:
            continue
        if node.op == "input":
            slot_of(node.results[0])
        elif node.op == "constant":
            preset[slot_of(node.results[0])] = node.attrs["value"]
        elif node.op == "weight":
            preset[slot_of(node.results[0])] = weights[node.attrs["name"]]
        else:
            decode, last = _fusable_decode(node, consumers, graph.outputs)
            if last is not node:
                fused_away.update(id(n) for n in _chain(node, last))
            step = Step(
                run=backend.lower(node, decode),
                inputs=tuple(slot_of(v) for v in node.inputs),
                outputs=tuple(slot_of(v) for v in last.results),
                op=node.op if last is node else f"{node.op}+{last.op}",
            )
            if node.op != "gather" and all(s in preset for s in step.inputs):
                _run_at_load(step, preset)
            else:
                steps.append(step)
                if node.op in backend.view_ops:
                    borrowed.update(step.outputs)
    input_slots = tuple(slot_of(v) for v in graph.inputs)
    borrowed.update(input_slots, preset)
    return Plan(
        slot_count=len(slots),
        input_slots=input_slots,
        input_types=tuple(v.type for v in graph.inputs),
        output_slots=tuple(slot_of(v) for v in graph.outputs),
        output_types=tuple(v.type for v in graph.outputs),
        steps=steps,
        preset=preset,
        borrowed=frozenset(borrowed),
    )


def _live_nodes(graph: Graph) -> list[Node]:
    """Nodes the outputs depend on, in the order they were added (a topological order)."""
    seen: set[int] = set()
    stack = [v.node for v in graph.outputs]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(v.node for v in node.inputs)
    return [n for n in graph.nodes if id(n) in seen]


def _check_devices(live: list[Node], backend: Any) -> None:
    for node in live:
        for t in node.result_types:
            if not backend.supports(t.device.device_type.value):
                raise ValueError(
                    f"{node.op} places a value on {t.device}, but the {backend.name} backend runs "
                    "on the host CPU only; build the graph with DeviceRef.CPU() devices"
                )


def _consumers(live: list[Node], outputs: list[TensorValue]) -> dict[int, list[Node]]:
    uses: dict[int, list[Node]] = {}
    for node in live:
        for value in node.inputs:
            uses.setdefault(id(value), []).append(node)
    return uses


def _sole_consumer(value: TensorValue, consumers: dict, outputs: list) -> Node | None:
    users = consumers.get(id(value), [])
    if len(users) != 1 or any(value is out for out in outputs):
        return None
    return users[0]


def _fusable_decode(node: Node, consumers: dict, outputs: list) -> tuple[Decode | None, Node]:
    """For a row gather read only by a dequantize (and maybe a float cast after it): the decode
    to fuse and the last node of the chain. Otherwise (None, node)."""
    if node.op != "gather" or node.attrs["axis"] != 0 or node.inputs[0].rank != 2:
        return None, node
    dequantize = _sole_consumer(node.results[0], consumers, outputs)
    if dequantize is None or dequantize.op != "dequantize":
        return None, node
    last = dequantize
    cast = _sole_consumer(dequantize.results[0], consumers, outputs)
    decoded_f32 = dequantize.result_types[0].dtype.value == "float32"  # else it rounds first
    if (
        decoded_f32
        and cast is not None
        and cast.op == "cast"
        and cast.attrs["dtype"].value in _DECODED
    ):
        last = cast
    return Decode(dequantize.attrs["encoding"], last.result_types[0].dtype), last


_DECODED = ("float32", "bfloat16", "float16")


def _chain(first: Node, last: Node) -> list[Node]:
    chain, node = [], last
    while node is not first:
        chain.append(node)
        node = node.inputs[0].node
    return chain


def _run_at_load(step: Step, preset: dict[int, np.ndarray]) -> None:
    """A strided result is made contiguous once here, rather than by a kernel every execute."""
    values = step.run(Runtime(BufferPool()), step.outputs[0], *(preset[s] for s in step.inputs))
    values = values if isinstance(values, tuple) else (values,)
    for slot, value in zip(step.outputs, values, strict=True):
        preset[slot] = value if value.flags.c_contiguous else np.ascontiguousarray(value)
