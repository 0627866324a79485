"""Finding the token-embedding table among a checkpoint's tensors.

>>> is_embedding("model.embed_tokens.weight"), is_embedding("blk.0.attn_q.weight")
(True, False)
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from ember.weights import WeightData

__all__ = ["is_embedding", "pick_table"]

_EMBEDDING = re.compile(
    r"(^|\.)(token_embd|embed_tokens|word_embeddings|wte|tok_embeddings|embeddings)\.weight$"
)
"""Names llama.cpp, Hugging Face (Llama, BERT, GPT-2) and Meta's checkpoints give the table."""


def is_embedding(name: str) -> bool:
    return _EMBEDDING.search(name) is not None


def pick_table(weights: Mapping[str, WeightData], name: str | None) -> WeightData:
    """The tensor called `name`, or the one embedding table when `name` is None.

    Raises:
        UsageError: no such tensor (close names listed), one ember does not read (saying
            why), none or several candidates, or a tensor that is not a 2-D table or is empty.
    """
    from . import UsageError

    if name is None:
        found = [n for n in weights if is_embedding(n)]
        if len(found) != 1:
            what = "no embedding table" if not found else f"several: {', '.join(found)}"
            raise UsageError(f"found {what}; name the table with --tensor")
        name = found[0]
    unreadable = getattr(weights, "unreadable", {}).get(name)  # a Checkpoint's, saying why
    if unreadable is not None:
        raise UsageError(unreadable)
    if name not in weights:
        close = difflib.get_close_matches(name, list(weights), n=3)
        hint = f" (close: {', '.join(close)})" if close else ""
        raise UsageError(f"no tensor {name!r} in the checkpoint{hint}")
    data = weights[name]
    if data.array.ndim != 2:
        raise UsageError(f"{name!r} is not a table: its shape is {data.shape}")
    if 0 in data.shape:
        raise UsageError(f"{name!r} is an empty table: its shape is {data.shape}")
    return data
