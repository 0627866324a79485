"""Safetensors tensors as `WeightData` (never quantized: safetensors has no block formats)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ember.dtype import DType

from .data import WeightData
from .safetensors import read_safetensors

__all__ = ["safetensors_weights"]


def safetensors_weights(
    path: str | os.PathLike | Sequence[str | os.PathLike],
) -> tuple[dict[str, WeightData], dict[str, str]]:
    """The tensors ember reads, and why each of the others (of a dtype graphs cannot hold, such
    as complex64) is not read: the rest of the checkpoint stays usable.

    Raises:
        CheckpointError: a corrupt or missing file.
    """
    weights, unreadable = {}, {}
    for name, array in read_safetensors(path).items():
        try:
            dtype = DType.from_numpy(array.dtype)
        except TypeError:
            unreadable[name] = (
                f"{_named(path)}: tensor {name!r} holds {array.dtype} values, which ember's graphs "
                "have no type for"
            )
            continue
        weights[name] = WeightData(array, name, dtype, tuple(array.shape))
    return weights, unreadable


def _named(path: str | os.PathLike | Sequence[str | os.PathLike]) -> str:
    if isinstance(path, (str, os.PathLike)):
        return repr(os.fspath(path))
    return ", ".join(repr(os.fspath(p)) for p in path)
