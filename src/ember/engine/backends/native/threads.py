"""numba's thread count is per calling thread: each execute sets it for the thread it runs on,
skipping the call (which costs microseconds) when it is already right."""

from __future__ import annotations

import threading

import numba

__all__ = ["check_num_threads", "use_threads"]

_threads_set = threading.local()
"""The numba thread count ember last set in the calling thread (as ``count``). Thread-local
state dies with its thread: a new thread that is given a finished one's id starts unset,
as numba's own count for it does."""


def check_num_threads(num_threads: int | None) -> int:
    """`num_threads`, or every thread numba has when None.

    Raises:
        TypeError: not an int. ValueError: outside `[1, NUMBA_NUM_THREADS]`.
    """
    limit = numba.config.NUMBA_NUM_THREADS
    if num_threads is None:
        return limit
    if isinstance(num_threads, bool) or not isinstance(num_threads, int):
        raise TypeError(f"num_threads must be an int, got {num_threads!r}")
    if not 1 <= num_threads <= limit:
        raise ValueError(f"num_threads must be in [1, {limit}], got {num_threads}")
    return num_threads


def use_threads(num_threads: int) -> None:
    if getattr(_threads_set, "count", None) != num_threads:
        numba.set_num_threads(num_threads)
        _threads_set.count = num_threads
