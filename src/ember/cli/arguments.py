"""Argument types of the `ember` command: bad values are argparse usage errors."""

from __future__ import annotations

import argparse

__all__ = ["id_list", "positive", "threads"]


def id_list(text: str) -> list[int]:
    """Comma-separated token ids (``1,2,3``), each within int64; the table's own range is
    checked once it is read."""
    parts = [part.strip() for part in text.split(",")]
    if not any(parts):
        raise argparse.ArgumentTypeError("no ids given")
    try:
        ids = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated whole numbers, got {text!r}"
        ) from None
    for i, value in enumerate(ids):
        if not -(2**63) <= value < 2**63:
            raise argparse.ArgumentTypeError(
                f"id {value} at position ({i},) is out of range of any vocabulary"
            )
    return ids


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def threads(text: str) -> int:
    import numba

    value = positive(text)
    if value > numba.config.NUMBA_NUM_THREADS:
        raise argparse.ArgumentTypeError(
            f"this machine runs at most {numba.config.NUMBA_NUM_THREADS} threads, got {value}"
        )
    return value
