"""A GGUF file's tensors as `WeightData`: block formats by the registry's GGML type ids."""

from __future__ import annotations

from pathlib import Path

from ember.dtype import DType
from ember.graph import QuantizationEncoding
from ember.quant import BY_GGML_TYPE, PLAIN_GGML_TYPES

from .data import WeightData
from .gguf import read_gguf

__all__ = ["gguf_weights"]


def gguf_weights(path: Path) -> dict[str, WeightData]:
    """Raises CheckpointError (from the reader) for a corrupt file or an unread type."""
    file = read_gguf(path)
    weights = {}
    for name, tensor in file.tensors.items():
        fmt = BY_GGML_TYPE.get(tensor.type_id)
        if fmt is not None:
            encoding = QuantizationEncoding[fmt.name.upper()]
            dtype = DType.uint8
        else:
            encoding, dtype = None, PLAIN_GGML_TYPES[tensor.type_id]
        weights[name] = WeightData(file.array(name), name, dtype, tensor.shape, encoding)
    return weights
