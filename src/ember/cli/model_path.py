"""The checkpoint a path names: a folder holding one `.gguf` file (and no safetensors) is that
file, as a Hugging Face folder is its safetensors."""

from __future__ import annotations

from pathlib import Path

__all__ = ["model_path"]


def model_path(path: str | Path) -> Path:
    """`path`, or the one GGUF file of the folder `path` when the folder holds no safetensors.

    Raises:
        UsageError: the folder holds several GGUF files and no safetensors (name one), or
            neither.
    """
    from . import UsageError

    path = Path(path)
    if not path.is_dir() or any(path.glob("*.safetensors")) or any(path.glob("*.index.json")):
        return path  # the safetensors reader names what such a folder lacks
    found = sorted(path.glob("*.gguf"))
    if len(found) > 1:
        names = ", ".join(f.name for f in found)
        raise UsageError(f"{str(path)!r} holds several GGUF files ({names}); name one")
    if not found:
        raise UsageError(
            f"folder {str(path)!r} holds no checkpoint: no .gguf file and no .safetensors file "
            "or index"
        )
    return found[0]
