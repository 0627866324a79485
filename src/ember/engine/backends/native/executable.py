"""`NativeExecutable`: a plan's steps run in order over host arrays, one Python call each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..base import Executable
from .buffer_pool import BufferPool
from .fast_lookup import FastLookup
from .fast_step import FastStep
from .plan import Plan
from .runtime import Runtime
from .threads import use_threads

__all__ = ["NativeExecutable", "run_steps"]


class NativeExecutable(Executable):
    def __init__(self, plan: Plan, pool: BufferPool, num_threads: int) -> None:
        self._plan = plan
        self._pool = pool
        self._num_threads = num_threads
        self.borrowed_outputs = frozenset(
            i for i, slot in enumerate(plan.output_slots) if slot in plan.borrowed
        )
        self.fast_path = _fast_path(plan, pool, num_threads)
        if self.fast_path is None:
            self.fast_step = FastStep.create(plan, pool, num_threads)

    def run(
        self,
        inputs: Sequence[np.ndarray],
        bindings: Mapping[str, int],
        targets: Sequence[np.ndarray | None] | None,
    ) -> list[Any]:
        plan = self._plan
        by_slot = None
        if targets is not None:  # where an output's producer may write directly
            by_slot = {}
            for slot, target in zip(plan.output_slots, targets, strict=True):
                if target is not None:
                    by_slot.setdefault(slot, target)
        use_threads(self._num_threads)
        return run_steps(plan, inputs, Runtime(self._pool, bindings, by_slot))


def run_steps(plan: Plan, inputs: Sequence[Any], rt: Runtime) -> list[Any]:
    """The plan's outputs for these inputs: its steps run in order."""
    env: list[Any] = [None] * plan.slot_count
    for slot, value in plan.preset.items():
        env[slot] = value
    for slot, array in zip(plan.input_slots, inputs, strict=True):
        env[slot] = array
    for step in plan.steps:
        result = step.run(rt, step.outputs[0], *[env[s] for s in step.inputs])
        if len(step.outputs) == 1:
            env[step.outputs[0]] = result
        else:
            for slot, value in zip(step.outputs, result, strict=True):
                env[slot] = value
    return [env[slot] for slot in plan.output_slots]


def _fast_path(plan: Plan, pool: BufferPool, num_threads: int) -> FastLookup | None:
    """A `FastLookup` when the plan is one lookup of a weight by the graph's one input, its
    result the graph's one output."""
    if len(plan.steps) != 1 or len(plan.input_slots) != 1 or len(plan.output_slots) != 1:
        return None
    step = plan.steps[0]
    make = getattr(step.run, "fast_lookup", None)
    if make is None or step.outputs[0] != plan.output_slots[0] or step.outputs[0] in plan.borrowed:
        return None
    table_slot, ids_slot = step.inputs
    if ids_slot != plan.input_slots[0] or table_slot not in plan.preset:
        return None
    return make(plan.preset[table_slot], pool, num_threads)
