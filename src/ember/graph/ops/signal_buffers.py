"""MAX's `signal_buffers`: the device buffers its GPU collectives synchronize through, a
required argument of `allgather`, `allreduce.sum` and `VocabParallelEmbedding`. Ember's
exchanges synchronize themselves, so the argument is optional and never read; it is taken so
that MAX's calls run unchanged."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["check_signal_buffers"]


def check_signal_buffers(owner: str, signal_buffers: Iterable[Any] | None) -> None:
    """Raises TypeError where `signal_buffers` is neither None nor iterable: most likely a value
    meant for the next parameter, given by position."""
    if signal_buffers is not None and not isinstance(signal_buffers, Iterable):
        raise TypeError(
            f"{owner}: signal_buffers (MAX's synchronization buffers, which ember does not "
            f"need) must be an iterable or None, got {signal_buffers!r}; give what follows it "
            "by keyword"
        )
