"""`EmbeddingBag`: a table whose rows are looked up by bags of ids and pooled, one vector per
bag (PyTorch's `nn.EmbeddingBag`; `ops.embedding_bag` says what every argument does).

>>> from ember.graph import DeviceRef, Graph, TensorType
>>> bag = EmbeddingBag(1000, 64, DType.float32, DeviceRef.CPU(), name="items", mode="mean")
>>> types = [TensorType(DType.int64, ["n"]), TensorType(DType.int64, ["bags"])]
>>> with Graph("g", input_types=types) as g:
...     pooled = bag(g.inputs[0], g.inputs[1])
>>> pooled.shape
[Dim('bags'), Dim(64)]
"""

from __future__ import annotations

from typing import Any

from ember.dtype import DType
from ember.graph import DeviceRef, QuantizationEncoding, TensorValue, Weight, ops
from ember.graph.dim import StaticDim
from ember.graph.ops.embedding_bag import (
    BAG_MODES,
    BagMode,
    _normalized_padding,
    check_dense_table_dtype,
    checked_out_dtype,
)
from ember.graph.ops.gather import OutOfRange, index_value

from .embedding import (
    TableLayer,
    _checked_out_of_range,
    _device,
    _output_dtype,
    _table_dims,
    row_width,
)

__all__ = ["EmbeddingBag"]


class EmbeddingBag(TableLayer):
    """A `(vocab_size, hidden_dim)` table on `device`, declared as `EmbeddingV2` declares it
    (a quantized one as uint8 rows of `hidden_dim` bytes), pooled by `mode`: "sum" (the
    default here; torch's is "mean"), "mean" or "max".

    The result is float32 for float32 and quantized tables, and the table's dtype for bfloat16
    and float16 ones (accumulated in float32 all the same). `output_dtype` (float32, bfloat16
    or float16) asks for another: the float32 pooling rounded once to it, as FBGEMM's and
    TorchRec's `output_dtype` give it.
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
        mode: BagMode = "sum",
        include_last_offset: bool = False,
        padding_idx: int | None = None,
        out_of_range: OutOfRange = "error",
        output_dtype: DType | None = None,
    ) -> None:
        super().__init__()
        if mode not in BAG_MODES:
            raise ValueError(f"mode must be one of {BAG_MODES}, got {mode!r}")
        self.device = _device(device)
        self.vocab_size, hidden_dim = _table_dims(vocab_size, hidden_dim)
        _output_dtype(dtype, quantization_encoding, None)  # checks the declaration
        hidden_dim = row_width(quantization_encoding, hidden_dim)
        if quantization_encoding is None:
            check_dense_table_dtype("EmbeddingBag", dtype)
        self.mode = mode
        self.include_last_offset = bool(include_last_offset)
        self.padding_idx = _normalized_padding(padding_idx, StaticDim(self.vocab_size))
        self.out_of_range = _checked_out_of_range(out_of_range)
        self.output_dtype = checked_out_dtype("EmbeddingBag", output_dtype, "output_dtype")
        self.weight = Weight(
            name or "weight",
            dtype,
            (self.vocab_size, hidden_dim),
            device=self.device,
            quantization_encoding=quantization_encoding,
        )

    def __call__(
        self, indices: Any, offsets: Any = None, per_sample_weights: Any = None
    ) -> TensorValue:
        """One pooled vector per bag, `(bags, hidden)` on this layer's device: bags are 1-D
        `indices` cut at `offsets`, or the rows of 2-D `indices`."""
        ids = index_value("embedding_bag", indices).to(self.device)
        if offsets is not None:
            offsets = index_value("embedding_bag offsets", offsets).to(self.device)
        if per_sample_weights is not None:
            per_sample_weights = ops.as_value(per_sample_weights).to(self.device)
        return ops.embedding_bag(
            self.weight,
            ids,
            offsets,
            per_sample_weights,
            mode=self.mode,
            include_last_offset=self.include_last_offset,
            padding_idx=self.padding_idx,
            out_of_range=self.out_of_range,
            quantization_encoding=self.quantization_encoding,
            out_dtype=self.output_dtype,
        )
