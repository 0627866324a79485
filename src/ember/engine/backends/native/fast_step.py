"""`FastStep`: a model that is one step over its weights and its inputs (a bag, a collection of
bags) run without the general path's fixed costs.

A small batch of bags takes a few microseconds in its kernel; the general path around it (the
inputs converted and checked one by one, dims bound into a dict, a plan's slots filled, a
runtime made, the results sorted) cost twice that again. Here the step's arguments are laid out
once, at load, and a call checks only what the general path would check for inputs that need no
conversion: each input's shape against its graph type. Anything else (another shape, a dim
bound two ways) declines, and the general path says what is wrong.

A lowering opts in by marking its step function ``fast_step = True``: the step reads nothing of
its runtime but `Runtime.empty`, so that a bare runtime (no bindings, no ``out=``) serves it.
Opted-in steps that each take only the one result before them (a `cast` of the pooled bags)
may follow it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from ember.graph import StaticDim, SymbolicDim

from .buffer_pool import _REFCOUNTS_EXACT, ALIGNMENT, BufferPool
from .plan import Plan
from .runtime import Runtime
from .threads import use_threads

__all__ = ["FastStep"]


class FastStep:
    """``fast(inputs)`` -> the step's one result for the graph's inputs (each of the graph's
    dtype and rank, writeable and C-contiguous: the caller checked), or None where a dim does
    not fit the graph's input types."""

    def __init__(
        self,
        run: Any,
        slot: int,
        arguments: list[Any],
        positions: list[tuple[int, int]],
        shapes: list[tuple[Any, ...]],
        pool: BufferPool,
        num_threads: int,
        then: Sequence[tuple[Any, int]] = (),
    ) -> None:
        self._run = run
        self._then = list(then)
        """``(run, slot)`` of each step after the first, each taking the result before it."""
        self._slot = slot
        self._arguments = arguments
        """The step's arguments, weights in place; inputs filled in per call at `positions`:
        ``(argument, input)`` pairs."""
        self._positions = positions
        self._sizes = [
            (i, axis, dim.dim)
            for i, shape in enumerate(shapes)
            for axis, dim in enumerate(shape)
            if isinstance(dim, StaticDim)
        ]
        """``(input, axis, size)`` of every static dim."""
        first: dict[str, tuple[int, int]] = {}
        self._same = []
        for i, shape in enumerate(shapes):
            for axis, dim in enumerate(shape):
                if isinstance(dim, SymbolicDim):
                    seen = first.setdefault(dim.name, (i, axis))
                    if seen != (i, axis):
                        self._same.append((*seen, i, axis))
        """``(input, axis, input, axis)`` of each symbol's first axis and each later one."""
        self._checks = bool(self._sizes or self._same)
        weights = len(arguments) - len(shapes)
        self._in_order = positions == [(weights + i, i) for i in range(len(shapes))]
        """The inputs are the step's last arguments, in order, after the weights."""
        if self._in_order:
            self._arguments = arguments[:weights]
        self._runtime = _SpareRuntime(pool)
        self._num_threads = num_threads

    @classmethod
    def create(cls, plan: Plan, pool: BufferPool, num_threads: int) -> FastStep | None:
        """The fast step of a plan of opted-in steps, the first over weights and graph inputs of
        static or symbolic dims, each later one over the one result before it, the last one's
        one result the graph's one output; else None."""
        if not plan.steps or len(plan.output_slots) != 1:
            return None
        slots = []
        for i, step in enumerate(plan.steps):
            if not getattr(step.run, "fast_step", False) or len(step.outputs) != 1:
                return None
            if i and step.inputs != (slots[-1],):
                return None
            slots.append(step.outputs[0])
        if slots[-1] != plan.output_slots[0] or slots[-1] in plan.borrowed:
            return None
        step, slot = plan.steps[0], slots[0]
        then = [(later.run, s) for later, s in zip(plan.steps[1:], slots[1:], strict=True)]
        shapes = [tuple(t.shape) for t in plan.input_types]
        if any(not isinstance(d, StaticDim | SymbolicDim) for shape in shapes for d in shape):
            return None  # an algebraic dim: the general path evaluates it
        inputs = {s: i for i, s in enumerate(plan.input_slots)}
        arguments: list[Any] = []
        positions = []
        for position, source in enumerate(step.inputs):
            if source in plan.preset:
                arguments.append(plan.preset[source])
            elif source in inputs:
                arguments.append(None)
                positions.append((position, inputs[source]))
            else:
                return None
        return cls(step.run, slot, arguments, positions, shapes, pool, num_threads, then)

    def __call__(self, inputs: Sequence[np.ndarray]) -> Any:
        if self._checks:
            for i, axis, size in self._sizes:
                if inputs[i].shape[axis] != size:
                    return None
            for i, axis, j, other in self._same:
                if inputs[i].shape[axis] != inputs[j].shape[other]:
                    return None
        use_threads(self._num_threads)
        if self._in_order:
            result = self._run(self._runtime, self._slot, *self._arguments, *inputs)
        else:
            arguments = self._arguments.copy()
            for position, i in self._positions:
                arguments[position] = inputs[i]
            result = self._run(self._runtime, self._slot, *arguments)
        for run, slot in self._then:
            result = run(self._runtime, slot, result)
        return result


_SPARE_MAX_BYTES = 1 << 20
"""Results up to this size are kept for the next call of their shape (a pool's request costs
~1.4 us, a tenth of a one-bag call); larger ones come from the session's pool."""

_SPARE_SHAPES = 4
"""Shapes whose last result is kept; a fifth clears them."""

_FREE = 2
"""`sys.getrefcount` of a spare result taken off its dict, and of the memory under it, when
nothing else refers to them: the local name, and the call's own argument. A caller's Tensor,
array or view adds one."""


class _SpareRuntime(Runtime):
    """A runtime whose `empty` hands the last result of a shape out again once the caller has
    let go of it, and of every view of it."""

    def __init__(self, pool: BufferPool) -> None:
        super().__init__(pool)
        self._spares: dict[tuple, np.ndarray] = {}

    def empty(self, slot: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        key = (shape, dtype)
        spare = self._spares.pop(key, None)  # off the dict: no other thread takes it meanwhile
        if (
            spare is not None
            and sys.getrefcount(spare) == _FREE
            and sys.getrefcount(spare.base) == _FREE
        ):
            self._spares[key] = spare
            return spare
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > _SPARE_MAX_BYTES or not _REFCOUNTS_EXACT:
            return self.pool.empty(shape, dtype)
        buffer = np.empty(nbytes + ALIGNMENT, np.uint8)
        array = np.ndarray(shape, dtype, buffer, -buffer.ctypes.data % ALIGNMENT)
        if len(self._spares) >= _SPARE_SHAPES:
            self._spares.clear()  # shapes that keep changing: spares would not be used again
        self._spares[key] = array
        return array
