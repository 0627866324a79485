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

from collections.abc import Mapping, Sequence
from typing import Any

from ember.dtype import DType  # noqa: F401 - the doctest's
from ember.graph import TensorValue, ops
from ember.graph.ops.gather import index_value

from .embedding_bag import EmbeddingBag
from .module import Module

__all__ = ["EmbeddingBagCollection"]


class EmbeddingBagCollection(Module):
    """`bags`' tables read by named features: `features` maps each name to the index of the
    bag it reads (a table may serve several), in `KeyedTensor` order; by default one feature
    per bag, named by its weight, in order.

    Each feature is pooled as its bag pools (mode, padding_idx, out_of_range; the bag's
    include_last_offset plays no part, as lengths say where bags end). Tables may differ in
    width, dtype and format; all live on one device. The native backend pools a batch in one
    kernel call for all dense tables, plus one per quantized format among the tables (a
    compiled kernel holds one format's row decoder).
    """

    def __init__(
        self, bags: Sequence[EmbeddingBag], features: Mapping[str, int] | None = None
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
        if features is None:
            features = {bag.weight.name: i for i, bag in enumerate(self.bags)}
        self.features: dict[str, int] = {}
        for name, index in features.items():
            if isinstance(index, bool) or not 0 <= int(index) < len(self.bags):
                raise ValueError(
                    f"feature {name!r} reads bag {index!r}; there are {len(self.bags)} bags"
                )
            self.features[str(name)] = int(index)
        if not self.features:
            raise ValueError("EmbeddingBagCollection needs at least one feature")
        self.device = self.bags[0].device
        self.columns: dict[str, tuple[int, int]] = {}
        """Each feature's columns `[start, stop)` in the result (`KeyedTensor`'s offsets)."""
        start = 0
        for name, index in self.features.items():
            stop = start + _width(self.bags[index])
            self.columns[name] = (start, stop)
            start = stop

    def __call__(self, values: Any, lengths: Any) -> TensorValue:
        """`(batch, sum of the features' widths)`: `values` the ids of every feature,
        feature-major; `lengths` `(features, batch)`, the ids each sample has per feature."""
        ids = index_value("embedding_bag_collection values", values).to(self.device)
        sizes = index_value("embedding_bag_collection lengths", lengths).to(self.device)
        return ops.embedding_bag_collection(
            [bag.weight for bag in self.bags],
            ids,
            sizes,
            features=list(self.features.values()),
            modes=[bag.mode for bag in self.bags],
            padding_idx=[bag.padding_idx for bag in self.bags],
            out_of_range=[bag.out_of_range for bag in self.bags],
            quantization_encodings=[bag.quantization_encoding for bag in self.bags],
        )


def _width(bag: EmbeddingBag) -> int:
    """The pooled vector's width: a quantized row's bytes decode to more values."""
    encoding = bag.quantization_encoding
    return bag.hidden_dim if encoding is None else encoding.hidden_size(bag.hidden_dim)
