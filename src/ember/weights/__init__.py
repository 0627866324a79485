"""Checkpoints read zero-copy: GGUF files and safetensors files, sharded checkpoints and model
folders, as `WeightData` a session binds directly.

>>> import ember.weights                                        # doctest: +SKIP
>>> weights = ember.weights.load("gemma-3-270m-Q4_K_M.gguf")    # doctest: +SKIP
>>> layer = EmbeddingV2.from_weight(weights["token_embd.weight"])  # doctest: +SKIP
>>> session.load(graph, weights_registry=weights)               # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from .data import WeightData
from .errors import CheckpointError

__all__ = ["Checkpoint", "CheckpointError", "WeightData", "checkpoint_file", "load"]


class Checkpoint(dict):
    """A checkpoint's tensors by name; a missing name is a KeyError listing close ones. A tensor
    ember does not read (a safetensors complex64) is not among them: `unreadable` says why, and
    asking for it raises that as a CheckpointError."""

    def __init__(self, tensors: dict[str, WeightData], unreadable: dict[str, str] | None = None):
        super().__init__(tensors)
        self.unreadable = dict(unreadable or {})

    def __missing__(self, name: str) -> WeightData:
        if name in self.unreadable:
            raise CheckpointError(self.unreadable[name])
        close = difflib.get_close_matches(str(name), list(self), n=3)
        hint = f"; close: {', '.join(close)}" if close else ""
        raise KeyError(f"no tensor {name!r} in the checkpoint ({len(self)} tensors){hint}")


def load(path: str | os.PathLike) -> Checkpoint:
    """Every tensor of the checkpoint at `path`, by name: a `.gguf` file, a `.safetensors`
    file, a sharded checkpoint's `*.safetensors.index.json`, or a model folder holding them.
    Nothing is copied: each array maps the file.

    Raises:
        FileNotFoundError: nothing at `path`.
        CheckpointError: the file is corrupt, of an unknown kind, or (GGUF) holds a tensor
            type ember does not read (named). A safetensors tensor of a dtype graphs cannot
            hold is left out and named in `Checkpoint.unreadable`.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    path = checkpoint_file(path)
    if path.is_file() and _is_gguf(path):
        from .gguf_weights import gguf_weights

        return Checkpoint(gguf_weights(path))
    if path.is_dir() or path.suffix in (".safetensors", ".json"):
        from .safetensors_weights import safetensors_weights

        return Checkpoint(*safetensors_weights(path))
    raise CheckpointError(
        f"{str(path)!r} is neither a GGUF file nor safetensors (a .safetensors file, its "
        "index .json, or a model folder)"
    )


def checkpoint_file(path: str | os.PathLike) -> Path:
    """`path`, or the one GGUF file of the folder `path` when the folder holds no safetensors
    (a model folder of a GGUF, as a Hugging Face folder is one of safetensors).

    Raises:
        CheckpointError: the folder holds several GGUF files and no safetensors (name one), or
            no checkpoint at all.
    """
    path = Path(path)
    if not path.is_dir() or any(path.glob("*.safetensors")) or any(path.glob("*.index.json")):
        return path  # the safetensors reader names what such a folder lacks
    found = sorted(path.glob("*.gguf"))
    if len(found) > 1:
        names = ", ".join(f.name for f in found)
        raise CheckpointError(f"{str(path)!r} holds several GGUF files ({names}); name one")
    if not found:
        raise CheckpointError(
            f"folder {str(path)!r} holds no checkpoint: no .gguf file and no .safetensors file "
            "or index"
        )
    return found[0]


def _is_gguf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"GGUF"
