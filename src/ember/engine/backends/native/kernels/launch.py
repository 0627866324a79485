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

Not counted: this process's own native worker threads (threads Python did not start: torch's
OpenMP pool, numba's). torch's workers spin-wait for a while after each of its calls, so a
process that runs torch beside ember would otherwise always look loaded and keep ember on one
thread; those workers wait for work this process hands out, and measured beside torch's calls
ember's two threads still won (`benchmarks/README.md`). Python threads of this process count,
as other processes do: one running a kernel holds a core.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from numba import get_num_threads

__all__ = [
    "GATE",
    "PARALLEL_LAUNCH",
    "LoadGate",
    "launch",
    "native_threads_running",
    "runnable_tasks",
    "running_threads",
    "try_parallel",
]

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


class _TaskStates:
    """This process's threads' stat files, kept open (a re-read costs ~3 µs, an open twice
    that); reopened after a fork."""

    def __init__(self) -> None:
        self._pid = 0
        self._files: dict[int, int] = {}

    def running(self) -> set[int]:
        """Ids of this process's threads that are ready to run or running (state R)."""
        if self._pid != os.getpid():
            self._pid, self._files = os.getpid(), {}  # a fork's child: its parent's files
        tids = {int(name) for name in os.listdir("/proc/self/task")}
        for tid in self._files.keys() - tids:
            os.close(self._files.pop(tid))
        running = set()
        for tid in tids:
            fd = self._files.get(tid)
            try:
                if fd is None:
                    fd = self._files[tid] = os.open(f"/proc/self/task/{tid}/stat", os.O_RDONLY)
                stat = os.pread(fd, 512, 0)
            except OSError:  # the thread has ended meanwhile
                continue
            state = stat.rindex(b")") + 2  # after the name, which may hold anything
            if stat[state : state + 1] == b"R":
                running.add(tid)
        return running


_TASKS = _TaskStates()
_TASKS_LOCK = threading.Lock()


def running_threads() -> set[int] | None:
    """Native ids of this process's threads ready to run now, the caller included; None where
    the system does not say."""
    try:
        with _TASKS_LOCK:
            return _TASKS.running()
    except OSError:
        return None


def native_threads_running() -> int:
    """This process's threads ready to run that Python did not start (native pools' workers)."""
    running = running_threads()
    if not running:
        return 0
    return len(running - {thread.native_id for thread in threading.enumerate()})


def _cores() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


class LoadGate:
    """Whether each thread of a parallel kernel would find a core of its own now.

    The count of ready tasks is read at most every `refresh` seconds (a read costs ~5 us).
    Only when it shows the cores taken are this process's native workers counted (`own`,
    ~20-30 us) and taken off a second count, up to `_SAMPLES` times. Once the rest shows the
    cores taken at two reads in a row, parallel kernels stay off for `hold` seconds before it
    is read again, so that a load coming and going (a test suite's processes) keeps them off;
    a load seen at one read only keeps them off until the next.
    """

    def __init__(
        self,
        cores: int,
        runnable: Callable[[], int | None] = runnable_tasks,
        clock: Callable[[], float] = time.monotonic,
        refresh: float = 0.01,
        hold: float = 0.25,
        own: Callable[[], int] = native_threads_running,
    ) -> None:
        self._cores, self._runnable, self._clock, self._own = cores, runnable, clock, own
        self._refresh, self._hold = refresh, hold
        self._others = 0
        self._was_busy = False
        self._next_read = float("-inf")

    def has_room(self, threads: int) -> bool:
        """Whether `threads` workers and the tasks ready beside the caller fit on the cores
        (the caller sleeps while its workers run)."""
        now = self._clock()
        if now >= self._next_read:
            running = self._runnable()
            self._others = 0 if running is None else max(running - 1, 0)
            # own workers first, then the machine again: a worker that stops spinning in
            # between then makes the count smaller, never larger; one that starts spinning
            # makes it larger, so the pair is read up to `_SAMPLES` times and the smallest
            # count kept (one read between a worker's states held parallel kernels off for
            # the whole hold beside torch's spinning pool)
            for _ in range(_SAMPLES):
                if self._others + threads <= self._cores:
                    break
                own = self._own()
                running = self._runnable()
                others = 0 if running is None else max(running - 1 - own, 0)
                self._others = min(self._others, others)
            busy = self._others + threads > self._cores
            # a load seen at two reads in a row is held off; one seen once is read again
            # after `refresh` (another process's moment of work, a worker waking)
            self._next_read = now + (self._hold if busy and self._was_busy else self._refresh)
            self._was_busy = busy
        return self._others + threads <= self._cores


_SAMPLES = 3
"""Reads of this process's own workers and the machine's ready tasks before a busy verdict."""


GATE = LoadGate(_cores())


def launch(parallel: Callable[[], T], serial: Callable[[], T], threads: int | None = None) -> T:
    """``parallel()`` if the cores are free for ``threads`` threads (numba's count for the
    calling thread when None) and no other thread is in a parallel kernel, else ``serial()``."""
    if try_parallel(get_num_threads() if threads is None else threads):
        try:
            return parallel()
        finally:
            PARALLEL_LAUNCH.release()
    return serial()


def try_parallel(threads: int) -> bool:
    """`launch`'s choice without its closures, for callers counting microseconds: True when
    a parallel kernel on ``threads`` threads may run now, `PARALLEL_LAUNCH` then being held
    by the caller, who must release it once the kernel has returned."""
    return GATE.has_room(threads) and PARALLEL_LAUNCH.acquire(blocking=False)
