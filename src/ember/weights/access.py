"""Mapped checkpoints are read at random: lookups touch scattered rows.

Without advice, a page fault on a file not yet cached reads ahead as far as the device's
readahead allows (8 MB on the disk of the machine this was built on), most of it rows no lookup
asked for. `MADV_RANDOM` turns that readahead off for the mapping. (Pages already cached are
mapped a whole folio at a time, up to 2 MB, whatever the advice.)
"""

from __future__ import annotations

import contextlib
import mmap

__all__ = ["advise_random"]


def advise_random(mapping: mmap.mmap) -> None:
    """Ask the kernel to read `mapping` page by page (where the platform has the advice)."""
    advice = getattr(mmap, "MADV_RANDOM", None)
    if advice is None:
        return
    with contextlib.suppress(OSError, ValueError):  # a hint: a refusal changes nothing else
        mapping.madvise(advice)
