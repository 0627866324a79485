"""MAX's `Weights` interface (`max.graph.weights`) over ember's zero-copy checkpoints: tensors
reached by their names' path (`weights.model.layers[0].mlp.weight`), each made a graph
`Weight` by `allocate`, which also records the tensor in `allocated_weights` for the session.

>>> weights = GGUFWeights("gemma-3-270m-Q4_K_M.gguf")                 # doctest: +SKIP
>>> with Graph("lookup", input_types=[ids_type]) as graph:            # doctest: +SKIP
...     table = graph.add_weight(weights.token_embd.weight.allocate())
...     graph.output(ops.gather(table, graph.inputs[0], axis=0))
>>> session.load(graph, weights_registry=weights.allocated_weights)  # doctest: +SKIP

Beyond MAX's: every format of `ember.quant` is read (MAX's GGUF loader takes four block
formats), the recorded tensors carry their encoding, so `load` refuses a table bound to a
weight of another format, and `items()` under `layers.1` does not list `layers.10`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ember.dtype import DType
from ember.graph import DeviceRef, QuantizationEncoding, Weight

from . import Checkpoint
from .data import WeightData
from .gguf_weights import gguf_weights
from .safetensors_weights import safetensors_weights

__all__ = ["CheckpointWeights", "GGUFWeights", "SafetensorWeights", "Weights", "WeightsAdapter"]

_HOST = DeviceRef.CPU()

WeightsAdapter = Callable[..., dict[str, WeightData]]
"""MAX's name for a function that renames or converts a checkpoint's tensors for a model."""


@runtime_checkable
class Weights(Protocol):
    """What MAX's model code asks of a checkpoint: a name built by attribute and index access,
    whether a tensor has it, its data, and a graph `Weight` for it."""

    @property
    def name(self) -> str: ...

    def __getattr__(self, attr: str) -> Weights: ...

    def __getitem__(self, idx: int | str) -> Weights: ...

    def exists(self) -> bool: ...

    def items(self) -> Iterator[tuple[str, Weights]]: ...

    def data(self) -> WeightData: ...

    def allocate(
        self,
        dtype: DType | None = None,
        shape: Any = None,
        quantization_encoding: QuantizationEncoding | None = None,
        device: DeviceRef = _HOST,
    ) -> Weight: ...

    @property
    def allocated_weights(self) -> dict[str, Any]: ...


class CheckpointWeights:
    """`Weights` over an ember `Checkpoint`, at the name `prefix`. Children made by attribute
    and index access share the checkpoint and the record of allocated tensors.

    A name segment that is one of this class's own attributes (`data`, `name`, `items`, ...)
    is reached by index instead: ``weights.model["data"]``.
    """

    def __init__(
        self,
        checkpoint: Mapping[str, WeightData],
        *,
        prefix: str = "",
        allocated: dict[str, WeightData] | None = None,
    ) -> None:
        if not isinstance(prefix, str):
            raise TypeError(f"prefix is a str, got {type(prefix).__name__}")
        self._checkpoint = (
            checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint(dict(checkpoint))
        )
        self._prefix = prefix
        self._allocated = {} if allocated is None else allocated

    def _at(self, name: str) -> CheckpointWeights:
        child = object.__new__(type(self))
        child.__dict__.update(self.__dict__)
        child._prefix = name
        return child

    @property
    def name(self) -> str:
        """The name reached so far: ``model.layers.0`` for ``weights.model.layers[0]``."""
        return self._prefix

    def __getattr__(self, attr: str) -> CheckpointWeights:
        if attr.startswith("__") or attr in ("_checkpoint", "_prefix", "_allocated"):
            raise AttributeError(attr)  # copy, pickle and hasattr probes get no child
        return self._at(f"{self._prefix}.{attr}" if self._prefix else attr)

    def __getitem__(self, idx: int | str) -> CheckpointWeights:
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer, str)):
            raise TypeError(f"weights are indexed by an int or a str, got {idx!r}")
        return self.__getattr__(str(int(idx)) if not isinstance(idx, str) else idx)

    def exists(self) -> bool:
        """Whether a tensor has exactly this name (one of a dtype ember does not read too:
        its `data()` says why)."""
        return self._prefix in self._checkpoint or self._prefix in self._checkpoint.unreadable

    def items(self) -> Iterator[tuple[str, CheckpointWeights]]:
        """(full name, weights at it) for each tensor at this name or under it (``layers.1``
        holds ``layers.1.w``, not ``layers.10.w``), in the checkpoint's order; then those of
        a dtype ember does not read, whose `data()` says why."""
        under = self._prefix + "."
        for name in [*self._checkpoint, *self._checkpoint.unreadable]:
            if not self._prefix or name == self._prefix or name.startswith(under):
                yield name, self._at(name)

    def __iter__(self) -> Iterator[Any]:
        raise TypeError(f"{type(self).__name__} is not iterable: use items()")

    def data(self) -> WeightData:
        """The tensor of this name (no copy).

        Raises:
            KeyError: no tensor has this name (close ones are named).
            CheckpointError: the checkpoint holds it in a dtype ember does not read.
        """
        return self._checkpoint[self._prefix]

    def allocate(
        self,
        dtype: DType | None = None,
        shape: Any = None,
        quantization_encoding: QuantizationEncoding | None = None,
        device: DeviceRef = _HOST,
    ) -> Weight:
        """A graph `Weight` for this tensor, declared as it is stored (a quantized one as uint8
        rows of blocks, with its encoding), recorded in `allocated_weights`. `dtype` and
        `shape` (of values, for a quantized tensor) are checked when given; a
        `quantization_encoding` asks only that the tensor be quantized, as a GGUF file may mix
        formats (the `Weight` carries the one it holds).

        Raises:
            KeyError: no tensor has this name.
            ValueError: the tensor's dtype or shape is not the one given, or it is not
                quantized though an encoding was given.
        """
        data = self.data()
        weight = Weight(
            self._prefix, data.dtype, data.array.shape, device, data.quantization_encoding
        )
        if shape is not None:
            expected = tuple(int(d) for d in shape)
            if expected != data.shape:
                raise ValueError(
                    f"Value provided to weight {self._prefix!r} had different shape "
                    f"(expected={expected}, actual={data.shape})"
                )
        if dtype is not None and dtype is not data.dtype:
            raise ValueError(
                f"Value provided to weight {self._prefix!r} had different dtype "
                f"(expected={dtype!r}, actual={data.dtype!r})"
            )
        if quantization_encoding is not None and data.quantization_encoding is None:
            raise ValueError(
                f"Expected quantized weight but checkpoint contained unquantized weight for "
                f"{self._prefix!r}"
            )
        self._allocated[self._prefix] = data
        return weight

    def allocate_as_bytes(self, dtype: DType | None = None) -> Weight:
        """A uint8 `Weight` of this tensor's bytes (its last dim times its element size; a
        scalar as one dim), recorded in `allocated_weights`. `dtype` is checked when given.

        Raises:
            KeyError: no tensor has this name.
            ValueError: the tensor's dtype is not `dtype`.
        """
        data = self.data()
        if dtype is not None and dtype is not data.dtype:
            raise ValueError(
                f"Value provided to weight {self._prefix!r} had different dtype "
                f"(expected={dtype!r}, actual={data.dtype!r})"
            )
        array = data.array.reshape(data.array.shape or (1,)).view(np.uint8)
        self._allocated[self._prefix] = WeightData.from_numpy(array, self._prefix)
        return Weight(self._prefix, DType.uint8, array.shape, DeviceRef.CPU())

    @property
    def allocated_weights(self) -> dict[str, WeightData]:
        """The tensors `allocate` has made weights of, by name: a session's weights registry."""
        return self._allocated

    def __repr__(self) -> str:
        under = sum(1 for _ in self.items())
        return f"{type(self).__name__}(name={self._prefix!r}: {under} tensors at or under it)"


class GGUFWeights(CheckpointWeights):
    """`Weights` of a GGUF file, read zero-copy; `source` is its path, or a `gguf.GGUFReader`
    (MAX takes one) whose file is read again by ember's reader.

    Raises:
        FileNotFoundError: no file at the path.
        CheckpointError: the file is corrupt or holds a tensor type ember does not read.
        TypeError: `source` is neither a path nor a reader of a file.
    """

    def __init__(
        self,
        source: str | os.PathLike | Any,
        *,
        prefix: str = "",
        allocated: dict[str, WeightData] | None = None,
    ) -> None:
        path = getattr(getattr(source, "data", None), "filename", None) or source
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                f"GGUFWeights takes a GGUF file's path or a gguf.GGUFReader, got "
                f"{type(source).__name__}"
            )
        if not os.path.exists(path):
            raise FileNotFoundError(f"no GGUF file at {os.fspath(path)!r}")
        super().__init__(Checkpoint(gguf_weights(path)), prefix=prefix, allocated=allocated)


class SafetensorWeights(CheckpointWeights):
    """`Weights` of safetensors files (a list, as MAX takes them; also one path, an index
    `.json` or a model folder), read zero-copy. Safetensors holds no block formats, so
    `allocate` refuses a `quantization_encoding`, as MAX's does.

    Raises:
        CheckpointError: a file is missing, corrupt, or shares a tensor name with another.
    """

    def __init__(
        self,
        filepaths: Sequence[str | os.PathLike] | str | os.PathLike,
        *,
        prefix: str = "",
        allocated: dict[str, WeightData] | None = None,
    ) -> None:
        if not isinstance(filepaths, (str, os.PathLike)):
            filepaths = list(filepaths)
        super().__init__(
            Checkpoint(*safetensors_weights(filepaths)), prefix=prefix, allocated=allocated
        )

    def allocate(
        self,
        dtype: DType | None = None,
        shape: Any = None,
        quantization_encoding: QuantizationEncoding | None = None,
        device: DeviceRef = _HOST,
    ) -> Weight:
        if quantization_encoding is not None:
            raise ValueError(
                "Quantization encodings are not supported in safetensor format. Got: "
                f"{quantization_encoding!r}"
            )
        return super().allocate(dtype, shape, None, device)

    allocate.__doc__ = CheckpointWeights.allocate.__doc__
