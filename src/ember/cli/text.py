"""The ids `ember embed --text` looks up: the text's own tokens (no padding, no truncation),
by a tokenizer.json (`--tokenizer`, else the one beside a safetensors checkpoint, as a Hugging
Face model folder holds it) or by the vocabulary a GGUF file carries."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["text_ids"]


def text_ids(text: str, checkpoint: Path, tokenizer_file: str | None) -> np.ndarray:
    """Raises UsageError: no tokenizer to be had, or one that cannot be read."""
    from . import UsageError

    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise UsageError("--text needs the tokenizers package: pip install tokenizers") from None
    gguf = _is_gguf(checkpoint)
    beside = (checkpoint if checkpoint.is_dir() else checkpoint.parent) / "tokenizer.json"
    if tokenizer_file is None and not gguf and beside.is_file():
        tokenizer_file = str(beside)  # a Hugging Face model folder's own
    if tokenizer_file is not None:
        try:
            tokenizer = Tokenizer.from_file(tokenizer_file)
        except Exception as error:  # tokenizers raises its own Exception types
            raise UsageError(f"cannot read tokenizer {tokenizer_file!r}: {error}") from None
    elif gguf:
        from ember.weights.gguf import read_gguf

        from .gguf_tokenizer import gguf_tokenizer

        tokenizer = gguf_tokenizer(read_gguf(checkpoint))
    else:
        raise UsageError(
            "--text on a safetensors checkpoint needs --tokenizer tokenizer.json (none is "
            "beside the checkpoint)"
        )
    # A tokenizer.json may pad every text to a fixed length (MiniLM's: 128) and truncate it:
    # batching concerns of a model's input, not tokens of the text.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return np.asarray(tokenizer.encode(text).ids, np.int64)


def _is_gguf(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        return f.read(4) == b"GGUF"
