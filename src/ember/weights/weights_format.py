"""Which of MAX's loaders a checkpoint's paths take (`max.graph.weights`' `load_weights`).

>>> weights_format([Path("model-00001.safetensors"), Path("model-00002.safetensors")])
<WeightsFormat.safetensors: 'safetensors'>
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from pathlib import Path

from .tree import CheckpointWeights, GGUFWeights, SafetensorWeights

__all__ = ["WeightsFormat", "load_weights", "weights_format"]


class WeightsFormat(enum.StrEnum):
    """A checkpoint's file format, by its files' suffix."""

    gguf = "gguf"
    safetensors = "safetensors"


def weights_format(weight_paths: Sequence[str | os.PathLike]) -> WeightsFormat:
    """The one format of `weight_paths`, from their suffixes.

    Raises:
        ValueError: no paths, or not all `.gguf` nor all `.safetensors`.
    """
    if not weight_paths:
        raise ValueError("no weight_paths provided cannot infer weights format.")
    suffixes = {Path(os.fspath(p)).suffix for p in weight_paths}
    if suffixes == {".gguf"}:
        return WeightsFormat.gguf
    if suffixes == {".safetensors"}:
        return WeightsFormat.safetensors
    raise ValueError(
        f"weights type cannot be inferred from {[os.fspath(p) for p in weight_paths]}: "
        "every path must end in .gguf, or every one in .safetensors"
    )


def load_weights(paths: Sequence[str | os.PathLike] | str | os.PathLike) -> CheckpointWeights:
    """The `Weights` of one GGUF file or of safetensors files (a sharded checkpoint's shards);
    one path may be given alone.

    Raises:
        ValueError: no paths, a path that does not exist, mixed or unknown suffixes, or several
            GGUF files.
        CheckpointError: a file is corrupt.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]  # one file, where MAX asks for a list of them
    if not paths:
        raise ValueError("no paths provided, cannot load weights.")
    for path in paths:
        if not os.path.exists(path):
            raise ValueError(f"file path ({os.fspath(path)}) does not exist, cannot load weights.")
    if weights_format(paths) is WeightsFormat.gguf:
        if len(paths) > 1:
            raise ValueError("loading multiple gguf files is not supported.")
        return GGUFWeights(paths[0])
    return SafetensorWeights(list(paths))
