"""What the `ember` commands write: files (`embed -o`, `logits --out`, `quantize -o`), their
target worked out and checked before any work, and written beside it then renamed into place;
and what they print (rich tables, JSON values)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "checked_npy_output",
    "checked_output",
    "console",
    "json_values",
    "npy_target",
    "printable",
    "save_npy",
    "write_through_rename",
]


def npy_target(given: str) -> Path:
    """The file `numpy.save(given, ...)` writes: `given`, with `.npy` added when it does not
    end so."""
    return Path(given if given.endswith(".npy") else f"{given}.npy")


def checked_output(option: str, given: str, target: Path, force: bool, kind: str) -> Path:
    """`target`, the file that `option` (given as `given`) makes the command write, checked
    before any work: neither it nor `given` a folder, an existing file only with --force, and
    its folder present and writable.

    Raises:
        UsageError: the path is a folder, exists without --force, or its folder is missing or
            read-only.
    """
    from . import UsageError

    for named in dict.fromkeys((Path(given), target)):
        if named.is_dir():
            raise UsageError(f"{option} {str(named)!r} is a folder; give the {kind} file to write")
    if target.exists() and not force:
        raise UsageError(f"{str(target)!r} exists; pass --force to overwrite it")
    folder = target.parent
    if not folder.is_dir():
        raise UsageError(f"cannot write {str(target)!r}: no folder {str(folder)!r}")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {str(target)!r}: folder {str(folder)!r} is read-only")
    return target


def checked_npy_output(option: str, given: str, force: bool) -> Path:
    """The .npy file `numpy.save(given, ...)` would write, checked as `checked_output` does."""
    return checked_output(option, given, npy_target(given), force, ".npy")


def write_through_rename(path: Path, write: Callable[[Path], None]) -> None:
    """`write(partial)` to a hidden file beside `path`, then rename it to `path`: a failed or
    interrupted write leaves any old file whole and no partial file behind.

    Raises:
        UsageError: the write or the rename failed (a full disk, a folder gone): one line.
    """
    from . import UsageError

    partial = path.parent / f".{path.name}.{os.getpid()}.part"
    try:
        write(partial)
        os.replace(partial, path)
    except BaseException as error:
        partial.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise UsageError(f"cannot write {str(path)!r}: {error.strerror or error}") from None
        raise


def save_npy(path: Path, array: np.ndarray) -> None:
    """`array` as the .npy file `path`, through a rename."""

    def write(partial: Path) -> None:
        with open(partial, "wb") as file:  # a file object: numpy.save appends no suffix
            np.save(file, array)

    write_through_rename(path, write)


def console(**options: object) -> Console:
    """A rich console on stdout, as wide as the terminal or, piped, 200 columns (names
    unclipped). Strings print as they are, never read as rich markup or emoji codes, their
    control characters escaped (see `printable`): names and paths come from files and users.
    A reader that closes the pipe raises BrokenPipeError, which `ember` turns into a quiet
    status 141, where rich's own handling would exit with status 1."""
    from rich.console import Console

    class _PipedConsole(Console):
        def render_str(self, text: str, **kwargs: Any) -> Any:
            return super().render_str(printable(text), **{**kwargs, "markup": False})

        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    options = {"markup": False, "emoji": False, **options}
    return _PipedConsole(width=None if sys.stdout.isatty() else 200, **options)


def printable(text: str) -> str:
    """`text` with each character a terminal would act on or cannot show (escape sequences,
    other control and format characters, undecodable bytes kept as surrogates) written as
    Python writes it in a string literal (``\\x1b``), as `gguf_dump` does: a tensor name
    cannot move the cursor, retitle the terminal or write to the clipboard. Line breaks stay."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in text)


def json_values(array: np.ndarray) -> list:
    """`array` as JSON lists: NaN and ±inf, which JSON has no number for, become null (of any
    float dtype, bfloat16 included, whose numpy kind is not "f")."""
    if array.dtype.kind in "biu":
        return array.tolist()
    wide = array.astype(np.float64)
    values = wide.astype(object)
    values[~np.isfinite(wide)] = None
    return values.tolist()
