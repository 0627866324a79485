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

from collections.abc import Sequence
from typing import Any

from ember.dtype import DType
from ember.graph import DeviceRef, QuantizationEncoding, TensorValue, Weight, ops
from ember.graph.ops.reducescatter import run_bounds

from .embedding import _device, _output_dtype, _positive, row_width
from .module import Module

__all__ = ["ColumnParallelLinear", "Linear", "row_products"]


class Linear(Module):
    """`in_dim` features to `out_dim`, MAX's signature: the weight is `(out_dim, in_dim)` of
    `dtype`, as torch and checkpoints store it, and the bias `(out_dim,)`. A quantized weight
    is declared as the embedding layers declare one: `dtype=DType.uint8` with `in_dim` the
    bytes of a row (or its values, as MAX's declare it: see `row_width`); its products are
    float32 (exact, or from 8-bit activations with `int8_activations=True`, within
    `ops.qmatmul`'s bound), and its bias float32.

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
        quant_config: Any = None,
    ) -> None:
        """`quant_config` (MAX's float8 configuration) is taken where it says nothing (None or
        empty); ember's quantized weights are `quantization_encoding`'s formats.

        Raises:
            NotImplementedError: a `quant_config` that asks for float8 scaling.
        """
        if quant_config:
            raise NotImplementedError(
                "Linear: quant_config (MAX's float8 scaling) is not supported; quantized weights "
                "take a quantization_encoding (GGUF or rowwise formats)"
            )
        super().__init__()
        self.device = _device(device)
        in_dim, out_dim = _positive("in_dim", in_dim), _positive("out_dim", out_dim)
        _output_dtype(dtype, quantization_encoding, None)
        in_dim = row_width(quantization_encoding, in_dim)
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

    @property
    def quantization_encoding(self) -> QuantizationEncoding | None:
        """The weight's: re-declared with it by `load_state_dict`'s override."""
        return self.weight.quantization_encoding

    def __call__(self, x: Any) -> TensorValue:
        bias = None if self.bias is None else ops.as_value(self.bias)
        return self._affine(ops.as_value(x), ops.as_value(self.weight), bias)

    def _affine(
        self, value: TensorValue, weight: TensorValue, bias: TensorValue | None
    ) -> TensorValue:
        """`value @ weight.T + bias` in this layer's format (a quantized weight's products
        take a float32 `value`)."""
        if self.quantization_encoding is not None and value.dtype is not DType.float32:
            value = value.cast(DType.float32)  # qmatmul's lhs
        y = row_products(value, weight, self.quantization_encoding, self.int8_activations)
        if bias is None:
            return y
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


class ColumnParallelLinear(Linear):
    """MAX's `Linear` split over `devices` by output rows: device `i` computes the products of
    its run of rows (runs as `reducescatter.sum` splits them), and an all-gather gives every
    device all of `y`. `tied_weight` (an embedding's `Weight`, of this layer's shape, dtype and
    encoding) makes it a tied LM head, as MAX's models tie theirs; `nn.LMHead` is ember's own,
    which exchanges candidates rather than logits."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        dtype: DType,
        devices: Sequence[DeviceRef],
        tied_weight: Weight | None = None,
        **kwargs: Any,
    ) -> None:
        """`kwargs` are `Linear`'s (`has_bias`, `quantization_encoding`, `name`, ...).

        Raises:
            ValueError: no devices; a bias or `quant_config` beside a tied weight (as MAX
                refuses them); a tied weight of another shape, dtype or encoding than the
                layer's.
        """
        devices = list(devices)
        if not devices:
            raise ValueError("ColumnParallelLinear requires a non-empty devices argument")
        if tied_weight is not None and (
            kwargs.get("quant_config") is not None or kwargs.get("has_bias", False)
        ):
            raise ValueError(
                "float8 and bias are both unsupported by ColumnParallelLinear currently: a "
                "tied weight takes neither"
            )
        super().__init__(in_dim, out_dim, dtype, devices[0], **kwargs)
        if tied_weight is not None:
            own = (self.weight.type.shape, self.weight.dtype, self.quantization_encoding)
            tied = (tied_weight.type.shape, tied_weight.dtype, tied_weight.quantization_encoding)
            if own != tied:
                raise ValueError(
                    f"ColumnParallelLinear: the tied weight {tied_weight.name!r} is {tied}; "
                    f"this layer's is {own}"
                )
            self.set_shared_weight("weight", tied_weight)  # the embedding's: it names it
        self.devices = devices

    def __call__(self, x: Any, signal_buffers: Any = None) -> list[TensorValue]:  # type: ignore[override]
        """`y` on every device, from `x`: one value for all, or one per device as MAX passes
        them, which must be the same states on each (device `i` computes its rows from its
        own value, moved to it if it lives elsewhere).

        Raises:
            ValueError: a number of values other than one or one per device.
        """
        values = list(x) if isinstance(x, list | tuple) else [x] * len(self.devices)
        if len(values) != len(self.devices):
            raise ValueError(
                f"ColumnParallelLinear: {len(values)} inputs for {len(self.devices)} devices; "
                "give one value, or one per device"
            )
        weight = ops.as_value(self.weight)
        bias = None if self.bias is None else ops.as_value(self.bias)
        outs = []
        runs = run_bounds(int(weight.shape[0]), len(self.devices))
        for (start, stop), device, value in zip(runs, self.devices, values, strict=True):
            part = None if bias is None else bias[start:stop].to(device)
            outs.append(
                self._affine(ops.as_value(value).to(device), weight[start:stop].to(device), part)
            )
        return ops.allgather(outs, signal_buffers, axis=-1)
