"""`Model`: a compiled graph bound to its weights, executed many times."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ember.dlpack import from_dlpack
from ember.driver import CPU, Tensor
from ember.graph import AlgebraicDim, StaticDim, SymbolicDim, TensorType

from .buffer_pool import BufferPool
from .compiler import Plan
from .runtime import Runtime

__all__ = ["Model"]


class Model:
    """Made by `InferenceSession.load`; `execute` binds symbolic dims, checks inputs, runs."""

    def __init__(self, plan: Plan, backend: Any, pool: BufferPool) -> None:
        self._plan = plan
        self._backend = backend
        self._pool = pool
        self._input_dtypes = [t.dtype.to_numpy() for t in plan.input_types]
        self._output_devices = [CPU(t.device.id) for t in plan.output_types]

    @property
    def input_metadata(self) -> list[TensorType]:
        return list(self._plan.input_types)

    @property
    def output_metadata(self) -> list[TensorType]:
        return list(self._plan.output_types)

    def __call__(self, *inputs: Any, out: Any = None) -> list[Tensor]:
        return self.execute(*inputs, out=out)

    def execute(self, *inputs: Any, out: Any = None) -> list[Tensor]:
        """Run the graph on `inputs` (numpy arrays, DLPack objects or Tensors).

        `out` (an array, or a list with an array or None per output) receives the results in
        place of pooled buffers. If execution raises, an `out` array may be partly written.

        Raises:
            TypeError: wrong number of inputs, an input not array-like or of the wrong dtype.
            ValueError: an input's rank or dims disagree with the graph's input types.
            IndexError: an id is out of range (per the lookup's out-of-range policy).
        """
        plan = self._plan
        arrays = self._check_inputs(inputs)
        env: list[Any] = [None] * plan.slot_count
        for slot, value in plan.preset.items():
            env[slot] = value
        for slot, array in zip(plan.input_slots, arrays, strict=True):
            env[slot] = array
        outs = self._out_arrays(out, arrays)
        targets = None
        if outs is not None:  # where an output's producer may write directly
            targets = {}
            for slot, target in zip(plan.output_slots, outs, strict=True):
                if target is not None:
                    targets.setdefault(slot, target)
        rt = Runtime(self._pool, _bind_dims(plan.input_types, arrays), targets)
        self._backend.enter()
        for step in plan.steps:
            result = step.run(rt, step.outputs[0], *[env[s] for s in step.inputs])
            if len(step.outputs) == 1:
                env[step.outputs[0]] = result
            else:
                for slot, value in zip(step.outputs, result, strict=True):
                    env[slot] = value
        targets_by_output = outs or [None] * len(plan.output_slots)
        results, returned = [], set()
        for slot, target, device in zip(
            plan.output_slots, targets_by_output, self._output_devices, strict=True
        ):
            value = self._result(env[slot], slot, target)
            if target is None and slot in returned:
                value = value.copy()  # an output listed twice still gets two arrays
            returned.add(slot)
            results.append(Tensor._of(value, device))
        return results

    def _check_inputs(self, inputs: Sequence[Any]) -> list[np.ndarray]:
        types = self._plan.input_types
        if len(inputs) != len(types):
            raise TypeError(f"the model takes {len(types)} inputs, got {len(inputs)}")
        arrays = []
        for i, (value, expected) in enumerate(zip(inputs, self._input_dtypes, strict=True)):
            array = _as_array(f"input {i}", value)
            if array.dtype != expected:
                raise TypeError(
                    f"input {i}: expected dtype {types[i].dtype!r}, got {array.dtype}; "
                    "convert it first (e.g. array.astype(...))"
                )
            if array.ndim != types[i].rank:
                raise ValueError(
                    f"input {i}: expected rank {types[i].rank} {types[i].shape}, "
                    f"got shape {array.shape}"
                )
            arrays.append(array)
        return arrays

    def _out_arrays(self, out: Any, inputs: list[np.ndarray]) -> list[np.ndarray | None] | None:
        """The caller's `out=` arrays, one (or None) per output: writeable, and overlapping no
        other `out=` array, input, weight or constant."""
        if out is None:
            return None
        outs = list(out) if isinstance(out, list | tuple) else [out]
        slots = self._plan.output_slots
        if len(outs) != len(slots):
            raise ValueError(f"out= has {len(outs)} arrays; the model has {len(slots)} outputs")
        arrays = [None if o is None else _as_array(f"out[{i}]", o) for i, o in enumerate(outs)]
        given = [(i, a) for i, a in enumerate(arrays) if a is not None]
        for n, (i, a) in enumerate(given):
            if not a.flags.writeable:
                raise ValueError(f"out[{i}] is read-only")
            for j, b in given[n + 1 :]:
                if np.may_share_memory(a, b):
                    raise ValueError(f"out[{i}] and out[{j}] overlap; give each output its own")
            for k, x in enumerate(inputs):
                if np.may_share_memory(a, x):
                    raise ValueError(f"out[{i}] overlaps input {k}; the result would corrupt it")
            for x in self._plan.preset.values():
                if np.may_share_memory(a, x):
                    raise ValueError(f"out[{i}] overlaps a weight or constant of the model")
        return arrays

    def _result(self, value: np.ndarray, slot: int, target: np.ndarray | None) -> np.ndarray:
        if target is not None and value is not target:
            if target.shape != value.shape or target.dtype != value.dtype:
                raise ValueError(
                    f"out= array has shape {target.shape} and dtype {target.dtype}; "
                    f"the result has shape {value.shape} and dtype {value.dtype}"
                )
            np.copyto(target, value)
            return target
        if slot in self._plan.borrowed:
            return value.copy()  # never hand out an input's, a weight's or a constant's memory
        return value


def _as_array(position: Any, value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, Tensor):
        return value.to_numpy()
    if hasattr(value, "__dlpack__"):
        return from_dlpack(value)
    raise TypeError(
        f"{position}: expected a numpy array, a Tensor or a DLPack object, "
        f"got {type(value).__name__}"
    )


def _bind_dims(types: Sequence[TensorType], arrays: Sequence[np.ndarray]) -> dict[str, int]:
    bindings: dict[str, int] = {}
    deferred = []
    for i, (t, array) in enumerate(zip(types, arrays, strict=True)):
        for axis, (dim, size) in enumerate(zip(t.shape, array.shape, strict=True)):
            if isinstance(dim, StaticDim):
                if size != dim.dim:
                    raise ValueError(
                        f"input {i}: axis {axis} must be {dim.dim}, got shape {array.shape}"
                    )
            elif isinstance(dim, SymbolicDim):
                known = bindings.setdefault(dim.name, size)
                if known != size:
                    raise ValueError(
                        f"input {i}: axis {axis} is {dim.name!r} = {known} elsewhere, "
                        f"got {size} (shape {array.shape})"
                    )
            elif isinstance(dim, AlgebraicDim):
                deferred.append((i, axis, dim, size))
    for i, axis, dim, size in deferred:
        unbound = dim.symbols() - bindings.keys()
        if unbound:
            raise ValueError(
                f"input {i}: axis {axis} is {dim}, but no input axis is plainly "
                f"{', '.join(sorted(unbound))} to bind it"
            )
        if dim.evaluate(bindings) != size:
            raise ValueError(f"input {i}: axis {axis} must be {dim} = {dim.evaluate(bindings)}")
    return bindings
