"""Safetensors tensors as `WeightData` (never quantized: safetensors has no block formats)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ember.dtype import DType

from .data import WeightData
from .errors import CheckpointError
from .safetensors import read_safetensors

__all__ = ["safetensors_weights"]


def safetensors_weights(path: Path) -> dict[str, WeightData]:
    """Raises CheckpointError for a corrupt or missing file, or a dtype graphs cannot hold."""
    return {name: _weight(path, name, array) for name, array in read_safetensors(path).items()}


def _weight(path: Path, name: str, array: np.ndarray) -> WeightData:
    try:
        dtype = DType.from_numpy(array.dtype)
    except TypeError:
        raise CheckpointError(
            f"{str(path)!r}: tensor {name!r} holds {array.dtype} values, which ember's graphs "
            "have no type for"
        ) from None
    return WeightData(name, array, dtype, tuple(array.shape))
