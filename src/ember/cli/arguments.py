"""Argument types of the `ember` command: bad values are argparse usage errors."""

from __future__ import annotations

import argparse

__all__ = ["positive", "threads"]


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
