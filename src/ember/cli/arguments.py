"""Argument types of the `ember` command: bad values are argparse usage errors."""

from __future__ import annotations

import argparse
import re

__all__ = ["gguf_format", "host_port", "id_list", "natural", "positive", "threads"]


def id_list(text: str) -> list[int]:
    """Comma-separated token ids (``1,2,3``), each within int64; the table's own range is
    checked once it is read."""
    parts = [part.strip() for part in text.split(",")]
    if not any(parts):
        raise argparse.ArgumentTypeError("no ids given")
    if not all(_WHOLE.fullmatch(part) for part in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}")
    ids = [int(part) for part in parts]
    for i, value in enumerate(ids):
        if not -(2**63) <= value < 2**63:
            raise argparse.ArgumentTypeError(
                f"id {value} at position ({i},) is out of range of any vocabulary"
            )
    return ids


_WHOLE = re.compile(r"[+-]?[0-9]+")
"""A whole number in ASCII digits: `int` alone also takes "1_0" and other scripts' digits."""


def host_port(text: str) -> str:
    """``host:port``, the port a whole number in [1, 65535]."""
    host, colon, port = text.rpartition(":")
    if (
        not colon
        or not host
        or not port.isascii()
        or not port.isdigit()
        or not 0 < int(port) < 65536
    ):
        raise argparse.ArgumentTypeError(f"expected host:port, e.g. 10.0.0.1:9876, got {text!r}")
    return text


def natural(text: str) -> int:
    """A whole number, 0 or more."""
    return _whole(text, 0, "must be 0 or more")


def positive(text: str) -> int:
    return _whole(text, 1, "must be at least 1")


def _whole(text: str, least: int, rule: str) -> int:
    if not _WHOLE.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    value = int(text)
    if value < least:
        raise argparse.ArgumentTypeError(f"{rule}, got {value}")
    return value


def threads(text: str) -> int:
    import numba

    value = positive(text)
    if value > numba.config.NUMBA_NUM_THREADS:
        raise argparse.ArgumentTypeError(
            f"this machine runs at most {numba.config.NUMBA_NUM_THREADS} threads, got {value}"
        )
    return value


def gguf_format(text: str) -> str:
    """The name of a format `ember quantize` writes (any case): one of the registry's, with a
    GGUF type, that ember quantizes."""
    from ember.quant import FORMATS, GGUF_FORMATS

    writable = ", ".join(name for name, f in GGUF_FORMATS.items() if f.quantizable)
    fmt = FORMATS.get(text.lower())
    if fmt is None:
        raise argparse.ArgumentTypeError(f"unknown format {text!r}; ember writes: {writable}")
    if fmt.ggml_type is None:
        raise argparse.ArgumentTypeError(
            f"{fmt.name} has no GGUF type, and ember quantize writes GGUF files: quantize such "
            f"a table in Python with ember.quant.FORMATS[{fmt.name!r}].quantize; "
            f"ember writes: {writable}"
        )
    if not fmt.quantizable:
        raise argparse.ArgumentTypeError(
            f"ember reads {fmt.name} but does not write it ({fmt.not_written}); "
            f"ember writes: {writable}"
        )
    return fmt.name
