"""`EmbeddingBagCollection`: many features' bags over many tables, pooled by one graph op
(TorchRec's `EmbeddingBagCollection`; `ops.embedding_bag_collection` says what is pooled).

>>> from ember.graph import DeviceRef, Graph, TensorType
>>> users = EmbeddingBag(1000, 16, DType.float32, name="users")
>>> items = EmbeddingBag(500, 8, DType.float32, name="items", mode="mean")
>>> collection = EmbeddingBagCollection([users, items], {"user": 0, "item": 1, "clicked": 1})
>>> types = [TensorType(DType.int64, ["n"]), TensorType(DType.int32, [3, "batch"])]
>>> with Graph("g", input_types=types) as g:
...     pooled = collection(*g.inputs)
>>> pooled.shape, collection.columns["clicked"]
([Dim('batch'), Dim(32)], (24, 32))
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ember.dtype import DType
from ember.graph import DeviceRef, TensorValue, ops
from ember.graph.ops.embedding_bag import checked_out_dtype
from ember.graph.ops.gather import index_value

from .embedding_bag import EmbeddingBag
from .module import Module

__all__ = ["EmbeddingBagCollection"]

Sharding = Literal["table", "row"]


class EmbeddingBagCollection(Module):
    """`bags`' tables read by named features: `features` maps each name to the index of the
    bag it reads (a table may serve several), in `KeyedTensor` order; by default one feature
    per bag, named by its weight, in order.

    Each feature is pooled as its bag pools (mode, padding_idx, out_of_range; the bag's
    include_last_offset plays no part, as lengths say where bags end). Tables may differ in
    width, dtype and format; all live on one device. The native backend pools a batch in one
    kernel call for all dense tables, plus one per quantized format among the tables (a
    compiled kernel holds one format's row decoder).

    With `devices`, the tables are sharded over them and the collection returns a list, one
    whole result per device (as `VocabParallelEmbedding` does). `sharding="table"` places
    table `t` whole on `devices[t % n]`; `"row"` splits every table by rows as
    `VocabParallelEmbedding` splits it; a list says per bag: a device index, or "row". Each
    device pools only the rows it holds and sends one partial vector per bag, never rows
    (`ops.sharded_embedding_bag_collection`): a row-split sum or mean may differ from the
    unsharded one in its last bits, as its terms are grouped by device, within the same bound
    `n * 2**-24 * sum |x_i|` of the exact one (`ember.graph.ops.embedding_bag`); max, and
    every table held whole, give the same bits. Across the processes of a
    job (XLA), `values` and `lengths` are the same host arrays in every process.

    The result is float32, or bfloat16 / float16 when every table is of that dtype;
    `output_dtype` (float32, bfloat16 or float16) asks for another: the float32 pooling
    rounded once to it, as TorchRec's `output_dtype` gives it.
    """

    def __init__(
        self,
        bags: Sequence[EmbeddingBag],
        features: Mapping[str, int] | None = None,
        *,
        devices: Sequence[DeviceRef] | None = None,
        sharding: Sharding | Sequence[int | Literal["row"]] = "table",
        output_dtype: DType | None = None,
    ) -> None:
        super().__init__()
        self.bags = list(bags)
        if not self.bags:
            raise ValueError("EmbeddingBagCollection needs at least one bag")
        for i, bag in enumerate(self.bags):
            if not isinstance(bag, EmbeddingBag):
                raise TypeError(f"bags[{i}] must be an EmbeddingBag, got {type(bag).__name__}")
            if bag.device != self.bags[0].device:
                raise ValueError(
                    f"bags[{i}] lives on {bag.device} and bags[0] on {self.bags[0].device}; "
                    "a collection's tables share one device"
                )
        names: dict[str, int] = {}
        for i, bag in enumerate(self.bags):
            if (j := names.setdefault(bag.weight.name, i)) != i:
                raise ValueError(
                    f"bags[{j}] and bags[{i}] are both named {bag.weight.name!r}; each table "
                    "needs a name of its own (a table read by several features is one bag, "
                    "named by several features)"
                )
        if features is None:
            features = names
        if not isinstance(features, Mapping):
            raise TypeError(
                "features maps each feature's name to the index of the bag it reads, e.g. "
                f'{{"user": 0}}; got a {type(features).__name__}'
            )
        self.features: dict[str, int] = {}
        for name, index in features.items():
            if not isinstance(name, str):
                raise TypeError(f"feature names are strings, got {name!r}")
            if isinstance(index, bool) or not isinstance(index, numbers.Integral):
                raise TypeError(f"feature {name!r} reads bag {index!r}; give the bag's index")
            if not 0 <= index < len(self.bags):
                raise ValueError(
                    f"feature {name!r} reads bag {index}; there are {len(self.bags)} bags"
                )
            self.features[name] = int(index)
        if not self.features:
            raise ValueError("EmbeddingBagCollection needs at least one feature")
        self.device = self.bags[0].device
        for i, bag in enumerate(self.bags):
            if bag.output_dtype is not None:
                raise ValueError(
                    f"bags[{i}] has output_dtype={bag.output_dtype!r}, which a bag alone "
                    "takes; give a collection's output_dtype to the collection"
                )
        self.output_dtype = checked_out_dtype(
            "EmbeddingBagCollection", output_dtype, "output_dtype"
        )
        self.columns: dict[str, tuple[int, int]] = {}
        """Each feature's columns `[start, stop)` in the result (`KeyedTensor`'s offsets)."""
        start = 0
        for name, index in self.features.items():
            stop = start + _width(self.bags[index])
            self.columns[name] = (start, stop)
            start = stop
        self.devices = None if devices is None else _device_list(devices)
        self.placement = self._placement(sharding)
        """Per bag: the index in `devices` of the one device holding its table, or "row" (split
        by rows over every device); None when the collection is not sharded."""

    def __call__(
        self, values: Any, lengths: Any, per_sample_weights: Any = None
    ) -> TensorValue | list[TensorValue]:
        """`(batch, sum of the features' widths)`: `values` the ids of every feature,
        feature-major; `lengths` `(features, batch)`, the ids each sample has per feature;
        `per_sample_weights` (a weighted `KeyedJaggedTensor`'s weights: one float per value)
        scale the rows of bags that sum. Sharded: a list of that result, one per device."""
        if self.placement is not None:
            return self._sharded(values, lengths, per_sample_weights)
        ids = index_value("embedding_bag_collection values", values).to(self.device)
        sizes = index_value("embedding_bag_collection lengths", lengths).to(self.device)
        if per_sample_weights is not None:
            per_sample_weights = ops.as_value(per_sample_weights).to(self.device)
        return ops.embedding_bag_collection(
            [bag.weight for bag in self.bags],
            ids,
            sizes,
            per_sample_weights=per_sample_weights,
            features=list(self.features.values()),
            modes=[bag.mode for bag in self.bags],
            padding_idx=[bag.padding_idx for bag in self.bags],
            out_of_range=[bag.out_of_range for bag in self.bags],
            quantization_encodings=[bag.quantization_encoding for bag in self.bags],
            out_dtype=self.output_dtype,
        )

    def shard_bounds(self, bag: int, device_index: int) -> tuple[int, int]:
        """The `[start, end)` rows of bag `bag`'s table held by device `device_index`: a
        row-split table as `VocabParallelEmbedding` splits it (`ceil(vocab / devices)` rows
        each, the last ones short or empty), a whole table by its one device."""
        vocab, place = self.bags[bag].vocab_size, self.placement[bag]
        if place != "row":
            return (0, vocab) if place == device_index else (vocab, vocab)
        size = math.ceil(vocab / len(self.devices))
        start = min(size * device_index, vocab)
        return start, min(start + size, vocab)

    def _sharded(self, values: Any, lengths: Any, weights: Any) -> list[TensorValue]:
        tables = []
        for t, bag in enumerate(self.bags):
            bounds = [self.shard_bounds(t, k) for k in range(len(self.devices))]
            table = ops.as_value(bag.weight)
            tables.append(
                [table[start:end].to(d)
                 for (start, end), d in zip(bounds, self.devices, strict=True) if end > start]
            )  # fmt: skip
        return ops.sharded_embedding_bag_collection(
            tables,
            index_value("embedding_bag_collection values", values),
            index_value("embedding_bag_collection lengths", lengths),
            self.devices,
            per_sample_weights=weights,
            features=list(self.features.values()),
            modes=[bag.mode for bag in self.bags],
            padding_idx=[bag.padding_idx for bag in self.bags],
            out_of_range=[bag.out_of_range for bag in self.bags],
            quantization_encodings=[bag.quantization_encoding for bag in self.bags],
            out_dtype=self.output_dtype,
        )

    def _placement(self, sharding: Any) -> list[int | str] | None:
        """Each bag's placement, checked.

        Raises:
            ValueError: `sharding` without `devices`, an unknown sharding, a device index out
                of range, or a row-split table with fewer rows than devices.
        """
        if self.devices is None:
            if sharding != "table":
                raise ValueError(
                    f"EmbeddingBagCollection: sharding={sharding!r} needs devices=[...]"
                )
            return None
        n = len(self.devices)
        if sharding == "table":
            placement: list = [t % n for t in range(len(self.bags))]
        elif sharding == "row":
            placement = ["row"] * len(self.bags)
        elif isinstance(sharding, list | tuple) and len(sharding) == len(self.bags):
            placement = list(sharding)
        else:
            raise ValueError(
                f"EmbeddingBagCollection: sharding must be 'table', 'row' or one entry per bag "
                f"({len(self.bags)}: a device index or 'row'), got {sharding!r}"
            )
        for t, place in enumerate(placement):
            name = self.bags[t].weight.name
            if place == "row":
                if self.bags[t].vocab_size < n:
                    raise ValueError(
                        f"EmbeddingBagCollection: table {name!r} has {self.bags[t].vocab_size} "
                        f"rows, fewer than the {n} devices it would be split over"
                    )
            elif isinstance(place, bool) or not isinstance(place, int) or not 0 <= place < n:
                raise ValueError(
                    f"EmbeddingBagCollection: table {name!r} placed on {place!r}; give a device "
                    f"index in [0, {n}) or 'row'"
                )
        return placement


def _device_list(devices: Any) -> list[DeviceRef]:
    devices = list(devices)
    if not devices:
        raise ValueError(
            "EmbeddingBagCollection: devices is empty; name at least one DeviceRef, or leave "
            "devices out for an unsharded collection"
        )
    if not all(isinstance(d, DeviceRef) for d in devices):
        raise ValueError(f"EmbeddingBagCollection: devices must be DeviceRefs, got {devices!r}")
    if len(set(devices)) != len(devices):
        raise ValueError(f"EmbeddingBagCollection: devices repeat: {devices}")
    return devices


def _width(bag: EmbeddingBag) -> int:
    """The pooled vector's width: a quantized row's bytes decode to more values."""
    encoding = bag.quantization_encoding
    return bag.hidden_dim if encoding is None else encoding.hidden_size(bag.hidden_dim)
