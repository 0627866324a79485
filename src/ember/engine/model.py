"""`Model`: a compiled graph bound to its weights, executed many times."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

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
        place of pooled buffers.

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
        rt = Runtime(self._pool, _bind_dims(plan.input_types, arrays), self._targets(out))
        self._backend.enter()
        for step in plan.steps:
            result = step.run(rt, step.outputs[0], *[env[s] for s in step.inputs])
            if len(step.outputs) == 1:
                env[step.outputs[0]] = result
            else:
                for slot, value in zip(step.outputs, result, strict=True):
                    env[slot] = value
        return [
            self._result(env[slot], slot, rt, device)
            for slot, device in zip(plan.output_slots, self._output_devices, strict=True)
        ]

    def _check_inputs(self, inputs: Sequence[Any]) -> list[np.ndarray]:
        types = self._plan.input_types
        if len(inputs) != len(types):
            raise TypeError(f"the model takes {len(types)} inputs, got {len(inputs)}")
        arrays = []
        for i, (value, expected) in enumerate(zip(inputs, self._input_dtypes, strict=True)):
            array = _as_array(i, value)
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

    def _targets(self, out: Any) -> dict[int, np.ndarray] | None:
        if out is None:
            return None
        outs = out if isinstance(out, list | tuple) else [out]
        slots = self._plan.output_slots
        if len(outs) != len(slots):
            raise ValueError(f"out= has {len(outs)} arrays; the model has {len(slots)} outputs")
        return {
            slot: _as_array(f"out[{i}]", o)
            for i, (slot, o) in enumerate(zip(slots, outs, strict=True))
            if o is not None
        }

    def _result(self, value: np.ndarray, slot: int, rt: Runtime, device: CPU) -> Tensor:
        if rt.targets is not None and slot in rt.targets and value is not rt.targets[slot]:
            rt.empty(slot, value.shape, value.dtype)  # checks the out= array's shape and dtype
            np.copyto(rt.targets[slot], value)
            value = rt.targets[slot]
        elif slot in self._plan.preset:
            value = value.copy()  # never hand out a weight or constant for the caller to mutate
        return Tensor._of(value, device)


def _as_array(position: Any, value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, Tensor):
        return value.to_numpy()
    if hasattr(value, "__dlpack__"):
        return np.from_dlpack(value)
    raise TypeError(
        f"input {position}: expected a numpy array, a Tensor or a DLPack object, "
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
        if dim.evaluate(bindings) != size:
            raise ValueError(f"input {i}: axis {axis} must be {dim} = {dim.evaluate(bindings)}")
    return bindings
