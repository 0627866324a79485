"""numba's thread count is per calling thread: each execute sets it for the thread it runs on,
skipping the call (which costs microseconds) when it is already right."""

from __future__ import annotations

import threading

import numba

__all__ = ["check_num_threads", "use_threads"]

_threads_set: dict[int, int] = {}
"""The numba thread count ember last set, per calling thread."""


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
    thread = threading.get_ident()
    if _threads_set.get(thread) != num_threads:
        numba.set_num_threads(num_threads)
        _threads_set[thread] = num_threads
