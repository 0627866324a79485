"""`CheckpointError`: a checkpoint that cannot be read (truncated, corrupt, or of a type ember
does not read). A checkpoint is untrusted input: every flaw is this one error, naming the file
and what is wrong, never a crash, an overread or a huge allocation."""

from __future__ import annotations

__all__ = ["CheckpointError"]


class CheckpointError(ValueError):
    """A checkpoint file ember cannot read; the message names the file and the flaw."""
