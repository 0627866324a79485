"""Embedding layers: a table of vectors, looked up by integer id.

>>> from ember.graph import DeviceRef, Graph, TensorType
>>> emb = EmbeddingV2(1000, 64, DType.float32, DeviceRef.CPU(), name="tokens")
>>> with Graph("g", input_types=[TensorType(DType.int32, ["batch", "seq"])]) as g:
...     out = emb(g.inputs[0])
>>> out.shape
[Dim('batch'), Dim('seq'), Dim(64)]
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any, Literal

from ember.dtype import DType
from ember.graph import DeviceRef, QuantizationEncoding, TensorValue, Weight, ops
from ember.graph.ops.dequantize import DEQUANTIZED_DTYPES
from ember.graph.ops.gather import OutOfRange, index_value
from ember.graph.ops.signal_buffers import check_signal_buffers

from .module import Module

__all__ = ["Embedding", "EmbeddingV2", "VocabParallelEmbedding"]

LAYER_OUT_OF_RANGE = ("error", "zero", "clamp")
"""The `out_of_range` values a layer takes."""


class TableLayer(Module):
    """A layer over one table, whose encoding and row width are its weight's: declared once,
    and re-declared in one place (`load_state_dict(override_quantization_encoding=True)`
    gives the weight the encoding of the tensor bound to it)."""

    weight: Weight

    @property
    def quantization_encoding(self) -> QuantizationEncoding | None:
        return getattr(self.weight, "quantization_encoding", None)  # None: a value's table

    @property
    def hidden_dim(self) -> int:
        """A row's values, or a quantized row's bytes."""
        return int(self.weight.shape[-1])


class EmbeddingV2(TableLayer):
    """A `(vocab_size, hidden_dim)` table on `device`, looked up by ids in `[0, vocab_size)`.

    A quantized table is declared as GGUF stores it: `dtype=DType.uint8` and `hidden_dim`
    the bytes of one row (or, as MAX's layers declare it, its values: see `row_width`); its
    lookups dequantize only the rows they read, into `output_dtype`
    (float32 unless asked). `out_of_range` says what an id outside the vocabulary does:
    "error" (IndexError naming the id, its position and the vocab size), "zero" or "clamp".
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_dim: int,
        dtype: DType,
        device: DeviceRef | None = None,
        quantization_encoding: QuantizationEncoding | None = None,
        name: str | None = None,
        *,
        out_of_range: OutOfRange = "error",
        output_dtype: DType | None = None,
    ) -> None:
        super().__init__()
        self.device = _device(device)
        self.vocab_size, hidden_dim = _table_dims(vocab_size, hidden_dim)
        self.output_dtype = _output_dtype(dtype, quantization_encoding, output_dtype)
        hidden_dim = row_width(quantization_encoding, hidden_dim)
        self.out_of_range = _checked_out_of_range(out_of_range)
        self.weight = Weight(
            name or "weight",
            dtype,
            (self.vocab_size, hidden_dim),
            device=self.device,
            quantization_encoding=quantization_encoding,
        )

    @classmethod
    def from_weight(
        cls, data: Any, device: DeviceRef | None = None, name: str | None = None, **options: Any
    ) -> EmbeddingV2:
        """A layer sized and typed by a checkpoint tensor (`ember.weights.load(path)[name]`),
        quantized or not; bind the same tensor under the layer's weight name at load.

        Raises:
            ValueError: the tensor is not a 2-D table.
        """
        vocab, width, dtype, encoding = _table_of(data)
        return cls(vocab, width, dtype, device, encoding, name or data.name, **options)

    def __call__(self, indices: Any) -> TensorValue:
        """Vectors for `indices` of shape `[...]`, as `[..., hidden]` on this layer's device."""
        ids = index_value("embedding", indices).to(self.device)
        rows = ops.gather(self.weight, ids, axis=0, out_of_range=self.out_of_range)
        return _decode(rows, self.quantization_encoding, self.output_dtype)

    def attend(self, hidden: Any) -> TensorValue:
        """Logits of `hidden` against this table, Flax's name for the tied head:
        `LMHead(self)(hidden)` (see `ember.nn.LMHead`)."""
        from .lm_head import LMHead

        return LMHead(self)(hidden)


class Embedding(EmbeddingV2):
    """MAX's two spellings: `Embedding(weights)` over any table value, or the arguments of
    `EmbeddingV2`.

    >>> import numpy as np
    >>> from ember.graph import Graph, ops
    >>> with Graph("g") as g:
    ...     out = Embedding(np.eye(4, dtype=np.float32))(ops.constant([3, 0], DType.int64))
    >>> out.shape
    [Dim(2), Dim(4)]
    """

    def __init__(self, weights: Any = None, *args: Any, **kwargs: Any) -> None:
        if isinstance(weights, numbers.Integral) and not isinstance(weights, bool):
            super().__init__(weights, *args, **kwargs)
            return
        if weights is None and not args and "vocab_size" in kwargs:  # every argument by name
            super().__init__(**kwargs)
            return
        if weights is None or args:
            raise TypeError(
                "Embedding takes a table (Embedding(weights)) or "
                "(vocab_size, hidden_dim, dtype, device, ...)"
            )
        Module.__init__(self)
        self.weight = weights
        self.out_of_range = _checked_out_of_range(kwargs.pop("out_of_range", "error"))
        if kwargs:
            raise TypeError(f"Embedding(weights) takes only out_of_range=, got {sorted(kwargs)}")
        self.output_dtype = None
        self.device = None

    def __call__(self, indices: Any) -> TensorValue:
        if self.device is not None:
            return super().__call__(indices)
        table = ops.as_value(self.weight)
        if table.rank != 2:
            raise ValueError(f"Embedding: the table must be 2-D (vocab, hidden), got {table.shape}")
        ids = index_value("embedding", indices).to(table.device)
        rows = ops.gather(table, ids, axis=0, out_of_range=self.out_of_range)
        return _decode(rows, self.quantization_encoding, None)


class VocabParallelEmbedding(TableLayer):
    """The table split by rows over `devices`: `ceil(vocab / n)` rows each (the last may be
    short, or empty when there are more devices than rows). Every device gets the full result,
    one value per device, from `ops.sharded_gather`: each shard contributes only the rows it
    owns.

    Ids are checked against the whole vocabulary, so a bad id raises (or is zeroed or clamped,
    by `out_of_range`) exactly as in `EmbeddingV2`, rather than silently vanishing.
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_dim: int,
        dtype: DType,
        devices: list[DeviceRef] | None = None,
        quantization_encoding: QuantizationEncoding | None = None,
        name: str | None = None,
        *,
        device: list[DeviceRef] | None = None,
        out_of_range: OutOfRange = "error",
        output_dtype: DType | None = None,
        reduce: Literal["all", "scatter"] = "all",
    ) -> None:
        super().__init__()
        if reduce not in ("all", "scatter"):
            raise ValueError(f"reduce must be 'all' or 'scatter', got {reduce!r}")
        self.reduce = reduce
        if devices is not None and device is not None:
            raise TypeError("VocabParallelEmbedding: give devices= or device=, not both")
        self.devices = _device_list(devices if devices is not None else device)
        self.vocab_size, hidden_dim = _table_dims(vocab_size, hidden_dim)
        self.output_dtype = _output_dtype(dtype, quantization_encoding, output_dtype)
        hidden_dim = row_width(quantization_encoding, hidden_dim)
        self.out_of_range = _checked_out_of_range(out_of_range)
        self.shard_size = math.ceil(self.vocab_size / len(self.devices))
        self.weight = Weight(
            name or "weight",
            dtype,
            (self.vocab_size, hidden_dim),
            device=DeviceRef.CPU(),
            quantization_encoding=quantization_encoding,
        )

    @classmethod
    def from_weight(
        cls, data: Any, devices: list[DeviceRef], name: str | None = None, **options: Any
    ) -> VocabParallelEmbedding:
        """A layer sized and typed by a checkpoint tensor, split over `devices`.

        Raises:
            ValueError: the tensor is not a 2-D table.
        """
        vocab, width, dtype, encoding = _table_of(data)
        return cls(vocab, width, dtype, devices, encoding, name or data.name, **options)

    @property
    def num_devices(self) -> int:
        return len(self.devices)

    def shard_bounds(self, device_index: int) -> tuple[int, int]:
        """The `[start, end)` rows of the vocabulary held by device `device_index`."""
        start = min(self.shard_size * device_index, self.vocab_size)
        return start, min(start + self.shard_size, self.vocab_size)

    def __call__(
        self, indices: Any, signal_buffers: Iterable[Any] | None = None
    ) -> list[TensorValue]:
        """Vectors for `indices`: the full result on each device, or with `reduce="scatter"`
        device `k`'s `k`-th slice of the ids' first axis (which the devices must divide).
        `signal_buffers` is MAX's, taken and not read (see `ember.graph.ops.signal_buffers`)."""
        check_signal_buffers("VocabParallelEmbedding", signal_buffers)
        ids = index_value("embedding", indices)
        table = ops.as_value(self.weight)
        if len(self.devices) == 1 and (self.reduce == "all" or ids.rank > 0):
            # one shard is the whole table: a plain lookup, with the backends' fast paths
            [device] = self.devices
            rows = ops.gather(table.to(device), ids.to(device), 0, out_of_range=self.out_of_range)
            return [_decode(rows, self.quantization_encoding, self.output_dtype)]
        shards = [table[slice(*self.shard_bounds(i))].to(d) for i, d in enumerate(self.devices)]
        rows = ops.sharded_gather(shards, ids, out_of_range=self.out_of_range, reduce=self.reduce)
        return [_decode(r, self.quantization_encoding, self.output_dtype) for r in rows]


def described(value: Any) -> str:
    """A value named by its type, and its shape and dtype where it has them, never its repr (a
    table's repr runs to pages)."""
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    what = type(value).__name__ + (f" of shape {tuple(shape)}" if shape is not None else "")
    return what + (f", {dtype}" if dtype is not None else "")


def _table_of(data: Any) -> tuple[int, int, DType, QuantizationEncoding | None]:
    """(vocab, width as declared, dtype, encoding) of a checkpoint tensor: a quantized table's
    declared width is its row's bytes, as GGUF stores it."""
    array = getattr(data, "array", None)
    if array is None or not hasattr(data, "quantization_encoding"):
        raise TypeError(
            "from_weight takes a checkpoint tensor (ember.weights.WeightData), got a "
            + described(data)
        )
    if array.ndim != 2:
        raise ValueError(
            f"{data.name!r} is not a table: shape {tuple(data.shape)}, an embedding needs "
            "(vocab, hidden)"
        )
    return int(array.shape[0]), int(array.shape[1]), data.dtype, data.quantization_encoding


def _decode(
    rows: TensorValue, encoding: QuantizationEncoding | None, output_dtype: DType | None
) -> TensorValue:
    if encoding is not None:
        return ops.dequantize(encoding, rows, out_dtype=output_dtype or DType.float32)
    return rows if output_dtype is None else rows.cast(output_dtype)


def _table_dims(vocab_size: Any, hidden_dim: Any) -> tuple[int, int]:
    return _positive("vocab_size", vocab_size), _positive("hidden_dim", hidden_dim)


def _positive(label: str, value: Any) -> int:
    """A layer's size as an int.

    Raises:
        ValueError: `value` is not a positive int.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{label} must be a positive int, got {value!r}")
    return int(value)


def row_width(encoding: QuantizationEncoding | None, width: int) -> int:
    """A table row's declared width: its values, or a quantized row's bytes. `width` of a
    quantized row is its bytes when it is whole blocks' bytes (ember's declaration, as GGUF
    stores the row), else (GGUF's block formats) its values when they fill whole blocks
    (MAX's layers declare values: 2048 Q4_K values are 1152 bytes); a width that is both is
    bytes.

    Raises:
        ValueError: `width` is neither (the message says why as bytes).
    """
    if encoding is None:
        return width
    try:
        encoding.hidden_size(width)
        return width
    except ValueError as as_bytes:
        if not encoding.is_gguf:  # a rowwise row is always its bytes (MAX has none)
            raise
        try:
            return encoding.row_bytes(width)
        except ValueError:
            raise as_bytes from None


def _output_dtype(
    dtype: DType,
    encoding: QuantizationEncoding | None,
    output_dtype: DType | None,
) -> DType | None:
    if not isinstance(dtype, DType):
        raise TypeError(f"dtype must be a DType, got {dtype!r}")
    if output_dtype is not None and not isinstance(output_dtype, DType):
        raise TypeError(f"output_dtype must be a DType, got {output_dtype!r}")
    if encoding is None:
        return output_dtype
    if not isinstance(encoding, QuantizationEncoding):
        raise TypeError(f"quantization_encoding must be a QuantizationEncoding, got {encoding!r}")
    if dtype is not DType.uint8:
        raise TypeError(
            f"a {encoding.value} table is declared as dtype=DType.uint8 (its raw blocks), "
            f"got {dtype!r}"
        )
    if output_dtype is not None and output_dtype not in DEQUANTIZED_DTYPES:
        raise TypeError(
            f"a quantized table dequantizes to one of {DEQUANTIZED_DTYPES}, got {output_dtype!r}"
        )
    return output_dtype


def _checked_out_of_range(out_of_range: Any) -> OutOfRange:
    if out_of_range not in LAYER_OUT_OF_RANGE:
        wrap = " ('wrap' is ops.gather's rule, not a layer's)" if out_of_range == "wrap" else ""
        raise ValueError(
            f"out_of_range must be one of {LAYER_OUT_OF_RANGE}, got {out_of_range!r}{wrap}"
        )
    return out_of_range


def _device(device: Any) -> DeviceRef:
    if device is None:
        return DeviceRef.CPU()
    if not isinstance(device, DeviceRef):
        raise TypeError(f"device must be a DeviceRef, got {device!r}")
    return device


def _device_list(devices: Any) -> list[DeviceRef]:
    if isinstance(devices, DeviceRef):
        devices = [devices]
    if not isinstance(devices, list | tuple):
        raise TypeError(f"devices must be a list of DeviceRefs, got {devices!r}")
    if not devices:
        raise ValueError("VocabParallelEmbedding needs a non-empty list of devices")
    devices = [_device(d) for d in devices]
    if len(set(devices)) != len(devices):
        raise ValueError(f"VocabParallelEmbedding: devices repeat: {devices}")
    return devices
