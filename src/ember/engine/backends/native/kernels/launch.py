"""One parallel kernel at a time in a process.

numba's workqueue threading layer (the one left where OpenMP and TBB are missing) aborts the
whole process when two Python threads launch parallel regions at once. A thread that finds
another's parallel kernel running runs the single-thread kernel on its own core instead of
queueing: the kernels release the GIL, so Python threads sharing a model all make progress.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["PARALLEL_LAUNCH", "launch"]

PARALLEL_LAUNCH = threading.Lock()

T = TypeVar("T")


def launch(parallel: Callable[[], T], serial: Callable[[], T]) -> T:
    """``parallel()`` if no other thread is in a parallel kernel, else ``serial()``."""
    if PARALLEL_LAUNCH.acquire(blocking=False):
        try:
            return parallel()
        finally:
            PARALLEL_LAUNCH.release()
    return serial()
