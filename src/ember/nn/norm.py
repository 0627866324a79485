"""`RMSNorm` and `LayerNorm`: MAX's normalization layers over the last axis, a weight (and a
bias) declared and `ops.rms_norm` / `ops.layer_norm` composed; `ConstantLayerNorm` (MAX's)
normalizes without weights. The norm before a tied LM
head, or after the embedding sum of a BERT-like encoder.

>>> import numpy as np
>>> from ember.graph import Graph, TensorType
>>> norm = RMSNorm(64, DType.float32, eps=1e-6, name="output_norm")
>>> sorted(norm.raw_state_dict())
['output_norm.weight']
>>> with Graph("g", input_types=[TensorType(DType.float32, ["tokens", 64])]) as g:
...     y = norm(g.inputs[0])
>>> y.shape
[Dim('tokens'), Dim(64)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ember.dtype import DType
from ember.graph import DeviceRef, TensorValue, Weight, ops

from .embedding import _device, _positive
from .module import Module

__all__ = ["ConstantLayerNorm", "LayerNorm", "RMSNorm"]


def _weight_names(name: str | None, *kinds: str) -> list[str]:
    """MAX's names ("weight", "bias"), or under `name` as a checkpoint names them
    ("model.norm" -> "model.norm.weight")."""
    return [kind if name is None else f"{name}.{kind}" for kind in kinds]


class RMSNorm(Module):
    """`x / sqrt(mean(x ** 2) + eps) * (weight + weight_offset)` over the last axis (of size
    `dim`), with MAX's defaults: Gemma's `multiply_before_cast=True`; Llama's is False and
    `weight_offset=0` (see `ops.rms_norm`). The weight is cast to the input's dtype first, as
    MAX's layer does."""

    def __init__(
        self,
        dim: int,
        dtype: DType,
        eps: float = 1e-6,
        weight_offset: float = 0.0,
        multiply_before_cast: bool = True,
        *,
        name: str | None = None,
        device: DeviceRef | None = None,
    ) -> None:
        super().__init__()
        self.dim, self.dtype, self.eps = _positive("dim", dim), dtype, eps
        self.weight_offset, self.multiply_before_cast = weight_offset, multiply_before_cast
        (weight,) = _weight_names(name, "weight")
        self.weight = Weight(weight, dtype, [self.dim], device=_device(device))

    def __call__(self, x: Any) -> TensorValue:
        value = ops.as_value(x)
        weight = ops.as_value(self.weight)
        if weight.dtype != value.dtype and value.dtype.is_float():
            weight = ops.cast(weight, value.dtype)
        return ops.rms_norm(
            value,
            weight.to(value.device),
            self.eps,
            weight_offset=self.weight_offset,
            multiply_before_cast=self.multiply_before_cast,
        )


class LayerNorm(Module):
    """`weight * (x - mean) / sqrt(var + eps) + bias` over the last axis (of size `dims`), MAX's
    signature (`devices`: the first holds the weights); `use_bias=False` leaves the bias out.
    One rounding to the input's dtype (MAX's layer computes in float32 and casts back)."""

    def __init__(
        self,
        dims: int,
        devices: Sequence[DeviceRef] | DeviceRef | None = None,
        dtype: DType = DType.float32,
        eps: float = 1e-5,
        use_bias: bool = True,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__()
        first = devices[0] if isinstance(devices, Sequence) and devices else devices
        device = _device(first)
        self.dim, self.dtype, self.eps = _positive("dims", dims), dtype, eps
        weight, bias = _weight_names(name, "weight", "bias")
        self.weight = Weight(weight, dtype, (self.dim,), device=device)
        self.bias = Weight(bias, dtype, (self.dim,), device=device) if use_bias else None

    def __call__(self, x: Any) -> TensorValue:
        value = ops.as_value(x)
        gamma = ops.as_value(self.weight).to(value.device)
        if self.bias is None:
            beta = np.zeros(self.dim, np.float32)  # an array: ops.layer_norm places it
        else:
            beta = ops.as_value(self.bias).to(value.device)
        return ops.layer_norm(value, gamma, beta, self.eps)


class ConstantLayerNorm(Module):
    """`(x - mean) / sqrt(var + eps)` over the last axis (of size `dims`): MAX's layer norm of
    constant gamma 1 and beta 0, with no weights. One rounding to the input's dtype.

    Raises:
        ValueError: `dims` is not a positive int (or a tuple of one).
    """

    def __init__(
        self, dims: int | tuple[int, ...], device: DeviceRef, dtype: DType, eps: float = 1e-5
    ) -> None:
        super().__init__()
        if isinstance(dims, tuple) and len(dims) == 1:
            dims = dims[0]
        self.dim, self.device, self.dtype, self.eps = _positive("dims", dims), device, dtype, eps

    def __call__(self, input: Any) -> TensorValue:
        value = ops.as_value(input)
        ones = np.ones(self.dim, value.dtype.to_numpy())
        return ops.layer_norm(value, ones, np.zeros_like(ones), self.eps)
