"""The copy roofline: how fast two threads copy memory on this machine, the bound a row gather
(which reads and writes each byte once) is set against."""

from __future__ import annotations

import time

import numba
import numpy as np
from embedding_tables import THREADS


@numba.njit(parallel=True, cache=True)
def _prange_copy(src, dst):
    for i in numba.prange(src.size):
        dst[i] = src[i]


def copy_roofline(repeats: int, mib: int = 256) -> list[float]:
    """Seconds per copy of ``mib`` MiB into a reused buffer by a two-thread numba prange loop."""
    numba.set_num_threads(min(THREADS, numba.config.NUMBA_NUM_THREADS))
    src = np.ones(mib << 17, np.uint64)
    dst = np.empty_like(src)
    _prange_copy(src, dst)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _prange_copy(src, dst)
        times.append(time.perf_counter() - start)
    return times
