"""`MLP` (MAX's): the gated feed-forward block, ``down(act(gate(x)) * up(x))``, of three
`Linear` layers (dense or GGUF-quantized weights), and MAX's `activation_function_from_name`.

>>> from ember.dtype import DType
>>> from ember.graph import DeviceRef
>>> mlp = MLP(DType.float32, None, hidden_dim=8, feed_forward_length=32, devices=[DeviceRef.CPU()])
>>> sorted(mlp.raw_state_dict())
['down_proj.weight', 'gate_proj.weight', 'up_proj.weight']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from ember.dtype import DType
from ember.graph import DeviceRef, QuantizationEncoding, TensorValue, ops

from .linear import Linear
from .module import Module

__all__ = ["MLP", "activation_function_from_name"]

_ACTIVATIONS: dict[str, Callable[[TensorValue], TensorValue]] = {
    "silu": ops.silu,
    "gelu": ops.gelu,
    "gelu_tanh": partial(ops.gelu, approximate="tanh"),
    "relu": ops.relu,
    "tanh": ops.tanh,
    "sigmoid": ops.sigmoid,
}


def activation_function_from_name(name: str) -> Callable[[TensorValue], TensorValue]:
    """The op for ``name``: silu, gelu, gelu_tanh, relu, tanh or sigmoid.

    Raises:
        ValueError: another name.
    """
    try:
        return _ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unrecognized activation function name ({name}); one of {sorted(_ACTIVATIONS)}"
        ) from None


class MLP(Module):
    """``down_proj(act(gate_proj(x)) * up_proj(x))`` over ``(..., hidden_dim)``, on
    ``devices[0]``. ``hidden_dim`` and ``feed_forward_length`` count values, quantized or
    not, as MAX's do (each quantized `Linear` is given its rows' bytes). With
    ``swiglu_limit > 0`` the gate is capped at the limit and the up projection clipped to
    ``[-limit, limit]`` first, as MAX does.

    Raises:
        ValueError: an unknown activation, no device, a negative limit, MAX's sharding
            (``is_sharding``), or a non-empty ``quant_config`` (float8 scaling: ember's
            quantized weights are ``quantization_encoding``'s formats).
    """

    def __init__(
        self,
        dtype: DType,
        quantization_encoding: QuantizationEncoding | None,
        hidden_dim: int,
        feed_forward_length: int,
        devices: Sequence[DeviceRef],
        linear_cls: Callable[..., Linear] = Linear,
        has_bias: bool = False,
        activation_function: str = "silu",
        quant_config: Any = None,
        swiglu_limit: float = 0.0,
        is_sharding: bool = False,
    ) -> None:
        super().__init__()
        if is_sharding:
            raise ValueError("MLP: is_sharding (MAX's tensor-parallel shards) is not supported")
        devices = list(devices)
        if not devices:
            raise ValueError("MLP: devices names no device")
        if not swiglu_limit >= 0:
            raise ValueError(f"MLP: swiglu_limit must be >= 0, got {swiglu_limit!r}")
        self.activation_function = activation_function_from_name(activation_function)
        self.devices, self.hidden_dim = devices, hidden_dim
        self.feed_forward_length, self.swiglu_limit = feed_forward_length, float(swiglu_limit)

        def projection(in_dim: int, out_dim: int) -> Linear:
            if quantization_encoding is not None:  # values, never bytes: as its row's bytes
                in_dim = quantization_encoding.row_bytes(in_dim)
            return linear_cls(
                in_dim=in_dim,
                out_dim=out_dim,
                dtype=dtype,
                device=devices[0],
                quantization_encoding=quantization_encoding,
                has_bias=has_bias,
                quant_config=quant_config,
            )

        self.gate_proj = projection(hidden_dim, feed_forward_length)
        self.down_proj = projection(feed_forward_length, hidden_dim)
        self.up_proj = projection(hidden_dim, feed_forward_length)

    @property
    def quantization_encoding(self) -> QuantizationEncoding | None:
        """The gate projection's (an override may give the others another)."""
        return self.gate_proj.quantization_encoding

    def __call__(self, x: Any) -> TensorValue:
        x = ops.as_value(x)
        gate = self.activation_function(self.gate_proj(x))
        up = self.up_proj(x)
        if self.swiglu_limit > 0:
            limit = ops.constant(self.swiglu_limit, gate.dtype, device=gate.device)
            gate = ops.min(gate, limit)
            up = ops.min(ops.max(up, -limit), limit)
        return self.down_proj(gate * up)
