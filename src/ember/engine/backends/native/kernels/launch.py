"""One parallel kernel at a time in a process, and none while the machine's cores are taken.

numba's workqueue threading layer (the one left where OpenMP and TBB are missing) aborts the
whole process when two Python threads launch parallel regions at once. A thread that finds
another's parallel kernel running runs the single-thread kernel on its own core instead of
queueing: the kernels release the GIL, so Python threads sharing a model all make progress.

A parallel kernel wakes its worker threads and waits for all of them. When other processes keep
every core busy, a woken worker waits for a scheduler slice: lookups one core does in tens of
microseconds were seen at 4-20 ms on two cores beside a test suite (`bench_under_load.py`).
`LoadGate` counts the tasks ready to run; a parallel kernel runs only while its threads would
each find a free core, else the single-thread kernel runs.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from numba import get_num_threads

__all__ = ["GATE", "PARALLEL_LAUNCH", "LoadGate", "launch", "runnable_tasks"]

PARALLEL_LAUNCH = threading.Lock()

T = TypeVar("T")


def runnable_tasks() -> int | None:
    """Tasks on the machine ready to run or running now, the caller included (Linux's
    /proc/loadavg); None where the system does not say."""
    try:
        fd = os.open("/proc/loadavg", os.O_RDONLY)
    except OSError:
        return None
    try:
        fields = os.read(fd, 128).split()
    finally:
        os.close(fd)
    return int(fields[3].split(b"/")[0])


def _cores() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


class LoadGate:
    """Whether each thread of a parallel kernel would find a core of its own now.

    The count of ready tasks is read at most every `refresh` seconds (a read costs ~10 us).
    Once it shows the cores taken, parallel kernels stay off for `hold` seconds before it is
    read again, so that a load coming and going (a test suite's processes) keeps them off.
    """

    def __init__(
        self,
        cores: int,
        runnable: Callable[[], int | None] = runnable_tasks,
        clock: Callable[[], float] = time.monotonic,
        refresh: float = 0.01,
        hold: float = 0.25,
    ) -> None:
        self._cores, self._runnable, self._clock = cores, runnable, clock
        self._refresh, self._hold = refresh, hold
        self._others = 0
        self._next_read = float("-inf")

    def has_room(self, threads: int) -> bool:
        """Whether `threads` workers and the tasks ready beside the caller fit on the cores
        (the caller sleeps while its workers run)."""
        now = self._clock()
        if now >= self._next_read:
            running = self._runnable()
            self._others = 0 if running is None else max(running - 1, 0)
            busy = self._others + threads > self._cores
            self._next_read = now + (self._hold if busy else self._refresh)
        return self._others + threads <= self._cores


GATE = LoadGate(_cores())


def launch(parallel: Callable[[], T], serial: Callable[[], T]) -> T:
    """``parallel()`` if the cores are free and no other thread is in a parallel kernel,
    else ``serial()``."""
    if GATE.has_room(get_num_threads()) and PARALLEL_LAUNCH.acquire(blocking=False):
        try:
            return parallel()
        finally:
            PARALLEL_LAUNCH.release()
    return serial()
