"""Calling a compiled kernel without numba's dispatch, for the one-token fast path.

A numba dispatcher types every argument and looks the signature up on each call, about a
quarter of a microsecond; a caller that always passes the same types can call the compiled
function behind that signature directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from numba.core.dispatcher import Dispatcher

__all__ = ["compiled_entry"]


def compiled_entry(dispatcher: Dispatcher, args: Sequence[Any]) -> Callable[..., Any]:
    """The compiled function `dispatcher` runs for arguments typed as ``args`` are (compiling
    it if need be). Callers must pass exactly those types: nothing checks them any more."""
    dispatcher(*args)
    signature = tuple(dispatcher.typeof_pyval(a) for a in args)
    compiled = dispatcher.overloads.get(signature)
    return dispatcher if compiled is None else compiled.entry_point
