"""A block's plan (`ember.graph.block`), built when its loop or branch is lowered and run
over the block's arguments and captured values whenever the loop or branch runs it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ember.engine.debug_print import DebugPrintOptions
from ember.graph.block import Block

from .executable import run_steps
from .plan import build_plan
from .runtime import Runtime

__all__ = ["BlockPlan"]


class BlockPlan:
    """A block's steps, ready to run. Its weights are the outer graph's, captured: the block
    itself holds none."""

    def __init__(self, block: Block, debug_print: DebugPrintOptions | None) -> None:
        self._plan = build_plan(block, {}, debug_print)

    def __call__(self, rt: Runtime, inputs: Sequence[Any]) -> list[Any]:
        """The block's outputs; its steps write no caller's `out=` array."""
        return run_steps(self._plan, inputs, Runtime(rt.pool, rt.bindings))
