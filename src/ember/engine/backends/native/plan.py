"""Graph → plan, once per `load`: live nodes in order, everything computed from weights and
constants alone evaluated at load (views stay views; lookups still run per execute), gather →
dequantize → cast chains fused into one kernel call, and every remaining node lowered to a
step that the executable runs in order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ember.engine.debug_print import DebugPrintOptions
from ember.graph import Graph, Node, TensorType, TensorValue
from ember.graph.graph import INPUT
from ember.graph.ops.cast import CAST
from ember.graph.ops.constant import CONSTANT, WEIGHT
from ember.graph.ops.dequantize import DEQUANTIZE
from ember.graph.ops.gather import GATHER

from .buffer_pool import BufferPool
from .lowering import LOWERINGS, Decode, LoweringContext, StepFn
from .runtime import Runtime

__all__ = ["Plan", "Step", "build_plan"]


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
    output_slots: tuple[int, ...]
    steps: list[Step]
    preset: dict[int, np.ndarray] = field(default_factory=dict)
    borrowed: frozenset[int] = frozenset()
    """Slots whose value may be an input's, a weight's or a constant's memory (or a view of it):
    an output from one of them is copied before the caller gets it."""
    input_types: tuple[TensorType, ...] = ()
    """The graph's input types, in `input_slots` order."""


def build_plan(
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    debug_print: DebugPrintOptions | None = None,
) -> Plan:
    """Raises NotImplementedError for an op the native backend has no lowering for.

    ``debug_print``: the session's options, which `ops.print` reads when it runs."""
    live = graph.live_nodes()
    consumers = _consumers(live)
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
        if node.op is INPUT:
            slot_of(node.results[0])
        elif node.op is CONSTANT:
            preset[slot_of(node.results[0])] = node.attrs["value"]
        elif node.op is WEIGHT:
            preset[slot_of(node.results[0])] = weights[node.attrs["name"]]
        else:
            decode, chains = _fused_decode(node, consumers, graph.outputs)
            fused_away.update(id(n) for chain in chains for n in chain)
            results = [chain[-1].results[0] for chain in chains] or node.results
            step = Step(
                run=_lower(LoweringContext(decode, debug_print), node),
                inputs=tuple(slot_of(v) for v in node.inputs),
                outputs=tuple(slot_of(v) for v in results),
                op="+".join(
                    [node.op.name, *(n.op.name for n in chains[0])] if chains else [node.op.name]
                ),
            )
            if (
                not node.op.lookup
                and not node.binds_dims
                and not node.has_effect
                and not node.blocks  # a block may hold lookups, which run at every execute
                and all(s in preset for s in step.inputs)
            ):
                _run_at_load(step, preset)
            else:
                steps.append(step)
                if node.op.may_alias:
                    borrowed.update(step.outputs)
    input_slots = tuple(slot_of(v) for v in graph.inputs)
    borrowed.update(input_slots, preset)
    return Plan(
        slot_count=len(slots),
        input_slots=input_slots,
        output_slots=tuple(slot_of(v) for v in graph.outputs),
        steps=steps,
        preset=preset,
        borrowed=frozenset(borrowed),
        input_types=tuple(v.type for v in graph.inputs),
    )


def _lower(ctx: LoweringContext, node: Node) -> StepFn:
    lowering = LOWERINGS.get(node.op)
    if lowering is None:
        raise NotImplementedError(f"the native backend has no lowering for op {node.op}")
    return lowering(ctx, node)


def _consumers(live: list[Node]) -> dict[int, list[Node]]:
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


def _fused_decode(node: Node, consumers: dict, outputs: list) -> tuple[Decode | None, list]:
    """For a row gather (or sharded gather) each of whose results is read only by a dequantize
    (and maybe a float cast after it), all alike: the decode to fuse, and each result's chain
    of fused nodes. Otherwise (None, [])."""
    if not node.op.lookup or node.inputs[0].rank != 2:
        return None, []
    if node.op is GATHER and node.attrs["axis"] != 0:
        return None, []
    chains = [_decode_chain(result, consumers, outputs) for result in node.results]
    if any(chain is None for chain in chains):
        return None, []
    decodes = {Decode(c[0].attrs["encoding"], c[-1].result_types[0].dtype) for c in chains}
    return (decodes.pop(), chains) if len(decodes) == 1 else (None, [])


def _decode_chain(value: TensorValue, consumers: dict, outputs: list) -> list[Node] | None:
    """The dequantize reading `value`, and a float cast after it when it is the only reader."""
    dequantize = _sole_consumer(value, consumers, outputs)
    if dequantize is None or dequantize.op is not DEQUANTIZE:
        return None
    cast = _sole_consumer(dequantize.results[0], consumers, outputs)
    decoded_f32 = dequantize.result_types[0].dtype.value == "float32"  # else it rounds first
    if (
        decoded_f32
        and cast is not None
        and cast.op is CAST
        and cast.attrs["dtype"].value in _DECODED
    ):
        return [dequantize, cast]
    return [dequantize]


_DECODED = ("float32", "bfloat16", "float16")


def _run_at_load(step: Step, preset: dict[int, np.ndarray]) -> None:
    """A strided result is made contiguous once here, rather than by a kernel every execute;
    a transposed one (Fortran order) stays a view, which the LM head's matmul reads as the
    table it is, without a table-sized copy."""
    values = step.run(Runtime(BufferPool()), step.outputs[0], *(preset[s] for s in step.inputs))
    values = values if isinstance(values, tuple) else (values,)
    for slot, value in zip(step.outputs, values, strict=True):
        in_order = value.flags.c_contiguous or value.flags.f_contiguous
        preset[slot] = value if in_order else np.ascontiguousarray(value)
