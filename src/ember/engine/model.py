"""`Model`: a compiled graph bound to its weights, executed many times."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ember.dlpack import from_dlpack, host_array
from ember.driver import CPU, Accelerator, Device, Tensor
from ember.dtype import DType
from ember.errors import InputError
from ember.graph import AlgebraicDim, DeviceRef, Graph, StaticDim, SymbolicDim, TensorType
from ember.graph.block import with_blocks
from ember.graph.ops.constant import CONSTANT

from .backends import Backend, Executable
from .backends.base import FastPath, FastStep

__all__ = ["Model"]


class Model:
    """Made by `InferenceSession.load`: a compiled graph, executed many times."""

    def __init__(
        self,
        graph: Graph,
        executable: Executable,
        backend: Backend,
        weights: Mapping[str, np.ndarray],
    ) -> None:
        self._executable = executable
        self._execution = _Execution(graph, executable, backend, weights)
        refs = [v.device for v in graph.inputs]
        refs += [t.device for n in with_blocks(graph.live_nodes()) for t in n.result_types]
        self._devices = [_device(ref) for ref in dict.fromkeys(refs)]
        if executable.fast_path is not None:
            self.execute = _fast_execute(self._execution, executable.fast_path)
        elif executable.fast_step is not None:
            self.execute = _fast_step_execute(self._execution, executable.fast_step)

    @property
    def devices(self) -> list[Device]:
        """Every device the model's inputs and values live on, inputs' first, in order."""
        return list(self._devices)

    @property
    def input_devices(self) -> list[Device]:
        """The device each input is used on, as MAX's `Model.input_devices` gives them."""
        return [_device(t.device) for t in self._execution._input_types]

    @property
    def output_devices(self) -> list[Device]:
        return list(self._execution._output_devices)

    @property
    def input_metadata(self) -> list[TensorType]:
        return list(self._execution._input_types)

    @property
    def output_metadata(self) -> list[TensorType]:
        return list(self._execution._output_types)

    def __call__(self, *inputs: Any, out: Any = None) -> list[Tensor]:
        return self.execute(*inputs, out=out)

    def execute(self, *inputs: Any, out: Any = None) -> list[Tensor]:
        """Run the graph on `inputs` (numpy arrays, DLPack objects or Tensors).

        `out` (an array, or a list with an array or None per output) receives the results in
        place of fresh buffers. If execution raises, an `out` array may be partly written.

        Raises:
            InputError: wrong number of inputs, an input of another kind of dtype, or
                holding an id the input's integer type cannot hold (ids of another integer
                type, and lists or tuples, are converted when every value fits); both a
                TypeError and, as MAX raises, a ValueError.
            TypeError: an input not array-like.
            ValueError: an input's rank or dims disagree with the graph's input types.
            OutOfRangeError: an id is out of range (per the lookup's out-of-range policy); it
                is both an IndexError and a ValueError.
        """
        return self._execution.execute(*inputs, out=out)


class _Execution:
    """What `Model.execute` does in general: checks inputs, runs the backend's executable and
    hands out results as `Tensor`s, never aliasing an input, a weight or a constant. Apart from
    `Model`, so that a fast path can hold it without holding the model."""

    def __init__(
        self,
        graph: Graph,
        executable: Executable,
        backend: Backend,
        weights: Mapping[str, np.ndarray],
    ) -> None:
        self._executable = executable
        self._backend = backend
        self._input_types = tuple(v.type for v in graph.inputs)
        self._output_types = tuple(v.type for v in graph.outputs)
        self._input_dtypes = [t.dtype.to_numpy() for t in self._input_types]
        self._output_devices = [_device(t.device) for t in self._output_types]
        self._one_fresh_output = len(self._output_types) == 1 and not executable.borrowed_outputs
        self._held = [*weights.values()] + [
            n.attrs["value"] for n in graph.live_nodes() if n.op is CONSTANT
        ]
        """Arrays the model reads at every execute: an `out=` array must not overlap them."""

    def execute(self, *inputs: Any, out: Any = None) -> list[Tensor]:
        """The general path of `Model.execute`."""
        arrays = self._check_inputs(inputs)
        bindings = _bind_dims(self._input_types, arrays)
        if self._executable.fast_path is not None:
            self._executable.fast_path.accept(arrays[0].shape)
        outs = None if out is None else self._out_arrays(out, arrays)
        values = self._executable.run(arrays, bindings, outs)
        if outs is None and self._one_fresh_output:  # the common case, without the loop
            value = values[0]
            return [] if value is None else [Tensor._of(value, self._output_devices[0])]
        targets = outs or [None] * len(values)
        borrowed = self._executable.borrowed_outputs
        results: list[Tensor] = []
        returned: set[int] = set()
        for i, (value, target, device) in enumerate(
            zip(values, targets, self._output_devices, strict=True)
        ):
            if value is None:  # on another process's device, in a job of several
                continue
            if target is not None:
                value = _into(target, value)
            elif i in borrowed or id(value) in returned:
                value = value.copy()  # never an input's, weight's or constant's memory, and an
                # output listed twice still gets two arrays
            returned.add(id(value))
            results.append(Tensor._of(value, device))
        return results

    def _check_inputs(self, inputs: Sequence[Any]) -> list[Any]:
        types = self._input_types
        if len(inputs) != len(types):
            raise InputError(f"the model takes {len(types)} inputs, got {len(inputs)}")
        arrays = []
        for i, (value, expected) in enumerate(zip(inputs, self._input_dtypes, strict=True)):
            array = self._as_input(i, value, expected)
            if array.dtype != expected:
                array = _converted(i, array, expected, types[i])
            if array.ndim != types[i].rank:
                raise ValueError(
                    f"input {i}: expected rank {types[i].rank} {types[i].shape}, "
                    f"got shape {array.shape}"
                )
            arrays.append(array)
        return arrays

    def _as_input(self, i: int, value: Any, expected: np.dtype) -> Any:
        if isinstance(value, np.ndarray):
            return value
        if isinstance(value, Tensor):
            value = value._array
            if isinstance(value, np.ndarray) or self._backend.accepts(value):
                return value
        elif self._backend.accepts(value):
            return value
        elif isinstance(value, list | tuple | numbers.Number | np.generic):  # a tokenizer's
            return _from_sequence(i, value, expected)  # ids, or one id for a rank-0 input
        return _as_array(f"input {i}", value)

    def _out_arrays(self, out: Any, inputs: list[Any]) -> list[np.ndarray | None] | None:
        """The caller's `out=` arrays, one (or None) per output: writeable, and overlapping no
        other `out=` array, input, weight or constant."""
        if out is None:
            return None
        outs = list(out) if isinstance(out, list | tuple) else [out]
        if len(outs) != len(self._output_types):
            raise ValueError(
                f"out= has {len(outs)} arrays; the model has {len(self._output_types)} outputs"
            )
        arrays = [None if o is None else _as_array(f"out[{i}]", o) for i, o in enumerate(outs)]
        given = [(i, a) for i, a in enumerate(arrays) if a is not None]
        for n, (i, a) in enumerate(given):
            if not a.flags.writeable:
                raise ValueError(f"out[{i}] is read-only")
            for j, b in given[n + 1 :]:
                if np.may_share_memory(a, b):
                    raise ValueError(f"out[{i}] and out[{j}] overlap; give each output its own")
            for k, x in enumerate(inputs):
                if isinstance(x, np.ndarray) and np.may_share_memory(a, x):
                    raise ValueError(f"out[{i}] overlaps input {k}; the result would corrupt it")
            for x in self._held:
                if np.may_share_memory(a, x):
                    raise ValueError(f"out[{i}] overlaps a weight or constant of the model")
        return arrays


def _fast_execute(execution: _Execution, fast: FastPath) -> Callable[..., list[Tensor]]:
    """`Model.execute` for a model whose executable has a fast path: a call with one ids
    array of the graph's dtype (writeable, C-contiguous, of a shape the general path has
    checked; or a host DLPack producer, torch's tensors, viewed as one) and no `out=`, or a
    writeable C-contiguous `out=` overlapping neither the ids nor the model's arrays, goes
    straight to it, everything else to the general path. A closure over its state, as the
    per-call cost is what it is for (and not over the model, which holds it)."""
    general = execution.execute
    dtype, device, held = execution._input_dtypes[0], execution._output_devices[0], execution._held
    ndarray, overlap, tensor = np.ndarray, np.may_share_memory, Tensor._of
    checked_out: list[Any] = [None]  # the last out= found to overlap no weight or constant

    def execute(*inputs: Any, out: Any = None) -> list[Tensor]:
        if len(inputs) == 1:
            ids = inputs[0]
            if type(ids) is not ndarray:
                ids = host_array(ids)
            if ids is not None and ids.dtype is dtype and ids.flags.carray:
                value = None
                if type(out) in (list, tuple) and len(out) == 1:  # one output: its array
                    out = out[0]
                if out is None:
                    value = fast(ids, None)
                elif (
                    type(out) is ndarray
                    and out.flags.carray
                    # two allocations cannot overlap: out owning its memory, and the ids
                    # owning theirs or viewing another array that owns its own
                    and (
                        (
                            out.flags.owndata
                            and (
                                ids.flags.owndata
                                or (
                                    type(base := ids.base) is ndarray
                                    and base is not out
                                    and base.flags.owndata
                                )
                            )
                        )
                        or not overlap(out, ids)
                    )
                    and (out is checked_out[0] or not any(overlap(out, x) for x in held))
                ):
                    checked_out[0] = out
                    value = fast(ids, out)
                if value is not None:
                    return [tensor(value, device)]
        return general(*inputs, out=out)

    execute.__doc__ = Model.execute.__doc__
    return execute


def _fast_step_execute(execution: _Execution, fast: FastStep) -> Callable[..., list[Tensor]]:
    """`Model.execute` for a model whose executable has a fast step: a call without ``out=``
    whose inputs are all of the graph's ranks, writeable and C-contiguous, and of the graph's
    dtypes (numpy arrays, or host DLPack producers such as torch's tensors viewed as such)
    goes straight to it, everything else to the general path. Integers of a type every value
    of which the graph's holds (int32 lengths for an int64 input, as TorchRec's) are widened
    first, as the general path would."""
    general = execution.execute
    dtypes, device = execution._input_dtypes, execution._output_devices[0]
    ranks = [t.rank for t in execution._input_types]
    count, ndarray, tensor = len(dtypes), np.ndarray, Tensor._of
    widens: dict[tuple[np.dtype, np.dtype], bool] = {}

    def execute(*inputs: Any, out: Any = None) -> list[Tensor]:
        if out is None and len(inputs) == count:
            arrays = []
            for value, dtype, rank in zip(inputs, dtypes, ranks, strict=True):
                if type(value) is not ndarray and (value := host_array(value)) is None:
                    break
                if value.dtype is not dtype:
                    pair = (value.dtype, dtype)
                    if (safe := widens.get(pair)) is None:
                        safe = widens[pair] = _widens(*pair)
                    if not safe or value.ndim != rank:
                        break
                    value = value.astype(dtype)  # a new C-contiguous array
                if value.ndim != rank or not value.flags.carray:
                    break
                arrays.append(value)
            else:
                result = fast(arrays)
                if result is not None:
                    return [tensor(result, device)]
        return general(*inputs, out=out)

    execute.__doc__ = Model.execute.__doc__
    return execute


def _widens(given: np.dtype, expected: np.dtype) -> bool:
    """Whether integers of ``given`` all fit ``expected``, so that converting needs no check."""
    return given.kind in "iu" and expected.kind in "iu" and np.can_cast(given, expected, "safe")


def _from_sequence(i: int, values: list | tuple, expected: np.dtype) -> np.ndarray:
    try:
        array = np.asarray(values)
    except (ValueError, TypeError, OverflowError) as exc:
        raise TypeError(f"input {i}: {type(values).__name__} is not a rectangular array") from exc
    if array.size == 0 or (array.dtype.kind == "f" and DType.from_numpy(expected).is_float()):
        return array.astype(expected)  # Python floats are float64; empty lists have no type
    if array.dtype == expected:  # a scalar of the graph's own dtype: ml_dtypes' bfloat16 too
        return array
    if array.dtype.kind not in "biuf":
        ints = [v for v in array.flat if isinstance(v, int) and not isinstance(v, bool)]
        if ints and len(ints) == array.size:  # Python ints past 64 bits
            graph_dtype = DType.from_numpy(expected)
            if expected.kind not in "iu":
                raise InputError(
                    f"input {i}: expected dtype {graph_dtype!r}, got Python ints past 64 bits; "
                    "convert them first (e.g. numpy.asarray(values, numpy.float32))"
                )
            raise InputError(
                f"input {i}: value {max(ints, key=abs)} does not fit the graph's "
                f"{graph_dtype!r} (nor any 64-bit integer)"
            )
        raise InputError(f"input {i}: expected numbers, got {array.dtype} values")
    return array


def _converted(i: int, array: Any, expected: np.dtype, t: TensorType) -> np.ndarray:
    """Integer ids of another integer type, in the graph's, when every one fits.

    Raises:
        TypeError: another kind of dtype, or an id the graph's type cannot hold.
    """
    array = np.asarray(array)
    if array.dtype.kind not in "iu" or expected.kind not in "iu":
        raise InputError(
            f"input {i}: expected dtype {t.dtype!r}, got {array.dtype}; "
            "convert it first (e.g. array.astype(...))"
        )
    if array.size:
        info = np.iinfo(expected)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            bad = low if low < info.min else high
            raise InputError(
                f"input {i}: {array.dtype} value {bad} does not fit the graph's {t.dtype!r} "
                f"([{info.min}, {info.max}]); declare the input with "
                + ("a signed type" if bad < 0 and info.min == 0 else "a wider type")
            )
    return array.astype(expected)


def _into(target: np.ndarray, value: Any) -> np.ndarray:
    """`value` written into the caller's `out=` array (unless it was computed there)."""
    if value is target:
        return target
    if tuple(target.shape) != tuple(value.shape) or target.dtype != value.dtype:
        raise ValueError(
            f"out= array has shape {target.shape} and dtype {target.dtype}; "
            f"the result has shape {tuple(value.shape)} and dtype {value.dtype}"
        )
    np.copyto(target, np.asarray(value))
    return target


def _device(ref: DeviceRef) -> Device:
    return CPU(ref.id) if ref.is_cpu() else Accelerator(ref.id)


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
