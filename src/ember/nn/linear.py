"""`Linear`: MAX's fully connected layer, `y = x @ weight.T + bias`, over a dense weight
(`ops.matmul`) or a GGUF-quantized one read block by block (`ops.qmatmul`, as the head reads
its table): an untied LM head, or a recommendation model's MLP over pooled bags.

>>> from ember.graph import Graph, TensorType
>>> layer = Linear(64, 10, DType.float32, has_bias=True, name="dense")
>>> sorted(layer.raw_state_dict())
['dense.bias', 'dense.weight']
>>> with Graph("g", input_types=[TensorType(DType.float32, ["batch", 64])]) as g:
...     y = layer(g.inputs[0])
>>> y.shape, y.dtype
([Dim('batch'), Dim(10)], float32)
"""

from __future__ import annotations

from typing import Any

from ember.dtype import DType
from ember.graph import DeviceRef, QuantizationEncoding, TensorValue, Weight, ops

from .embedding import _device, _output_dtype, _positive
from .module import Module

__all__ = ["Linear", "row_products"]


class Linear(Module):
    """`in_dim` features to `out_dim`, MAX's signature: the weight is `(out_dim, in_dim)` of
    `dtype`, as torch and checkpoints store it, and the bias `(out_dim,)`. A quantized weight
    is declared as the embedding layers declare one: `dtype=DType.uint8` with `in_dim` the
    bytes of a row; its products are float32 (exact, or from 8-bit activations with
    `int8_activations=True`, within `ops.qmatmul`'s bound), and its bias float32.

    Dense products follow `ops.matmul`: a float32 input against a bfloat16 or float16 weight
    gives float32, inputs of the weight's dtype give it."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        dtype: DType,
        device: DeviceRef | None = None,
        has_bias: bool = False,
        quantization_encoding: QuantizationEncoding | None = None,
        name: str | None = None,
        *,
        int8_activations: bool = False,
    ) -> None:
        super().__init__()
        self.device = _device(device)
        in_dim, out_dim = _positive("in_dim", in_dim), _positive("out_dim", out_dim)
        _output_dtype(dtype, quantization_encoding, None, in_dim)
        self.quantization_encoding = quantization_encoding
        self.int8_activations = bool(int8_activations)
        prefix = "" if name is None else f"{name}."
        self.weight = Weight(
            f"{prefix}weight",
            dtype,
            (out_dim, in_dim),
            device=self.device,
            quantization_encoding=quantization_encoding,
        )
        bias_dtype = DType.float32 if quantization_encoding is not None else dtype
        self.bias = (
            Weight(f"{prefix}bias", bias_dtype, (out_dim,), device=self.device)
            if has_bias
            else None
        )

    def __call__(self, x: Any) -> TensorValue:
        value = ops.as_value(x)
        if self.quantization_encoding is not None and value.dtype is not DType.float32:
            value = value.cast(DType.float32)  # qmatmul's lhs
        y = row_products(
            value, ops.as_value(self.weight), self.quantization_encoding, self.int8_activations
        )
        if self.bias is None:
            return y
        bias = ops.as_value(self.bias)
        return y + (bias if bias.dtype is y.dtype else bias.cast(y.dtype))


def row_products(
    x: TensorValue,
    weight: TensorValue,
    encoding: QuantizationEncoding | None,
    int8_activations: bool = False,
) -> TensorValue:
    """`x` against every row of `weight` (`x @ weight.T`): `ops.matmul` with its transpose, or
    `ops.qmatmul` reading a quantized weight's blocks (`x` then float32). What `Linear` and the
    LM head both compute."""
    if encoding is None:
        return ops.matmul(x, ops.transpose(weight, 0, 1))
    return ops.qmatmul(encoding, None, x, weight, int8_activations=int8_activations)
