"""Reusable result buffers: a fresh 100 MB output costs more in page faults than the gather
that fills it, so a session keeps the buffers its results used and hands them out again.

A buffer is free once nothing but the pool refers to it: the result `Tensor`, any numpy view
of it and any DLPack consumer all hold a reference, so a buffer is never reused while the
user can still see it. Idle buffers are held up to a cap (`max_idle_bytes`, 1 GiB unless the
session says otherwise), and a large one goes back to the system once it has sat idle for
about a second: one big batch does not pin its memory for the life of the session.

>>> pool = BufferPool(max_idle_bytes=1 << 20)
>>> a = pool.empty((4, 8), np.dtype(np.float32))
>>> address = a.ctypes.data
>>> del a
>>> pool.empty((2, 16), np.dtype(np.float32)).ctypes.data == address
True
"""

from __future__ import annotations

import math
import sys
import threading
import weakref

import numpy as np

__all__ = ["ALIGNMENT", "DEFAULT_MAX_IDLE_BYTES", "BufferPool"]

DEFAULT_MAX_IDLE_BYTES = 1 << 30
"""Idle buffers a pool keeps at most, unless the session sets another cap."""

LARGE_BYTES = 64 << 20
"""Buffers from this size up are returned to the system after IDLE_SECONDS without a user."""

IDLE_SECONDS = 1.0

ALIGNMENT = 64
"""Bytes; a cache line, and what 64-byte streaming stores need."""

_POOL_ONLY = 3
"""`sys.getrefcount` of a buffer only the pool holds, seen from a loop over the pool's list:
the list, the loop variable and the call's own argument."""

_TRACKED = 32
"""Buffers the pool follows at most; results kept beyond that get plain arrays, so each
request scans a short list however many results the caller holds."""

_REFCOUNTS_EXACT = sys.version_info < (3, 14) and getattr(sys, "_is_gil_enabled", lambda: True)()
"""From 3.14 (and without the GIL) the interpreter may hold borrowed references that
`sys.getrefcount` does not count; there a buffer is never lent twice."""

_SMALL = 64 * 1024
"""A buffer up to twice the request plus this is lent out; a larger one waits for a larger
request, so one-token lookups do not pin the buffers of big batches."""


class BufferPool:
    """Cache-line-aligned host buffers, reused by size once their last user lets go."""

    def __init__(self, max_idle_bytes: int = DEFAULT_MAX_IDLE_BYTES) -> None:
        if isinstance(max_idle_bytes, bool) or not isinstance(max_idle_bytes, int):
            raise TypeError(f"max_idle_bytes must be an int, got {max_idle_bytes!r}")
        if max_idle_bytes < 0:
            raise ValueError(f"max_idle_bytes must be >= 0, got {max_idle_bytes}")
        self.max_idle_bytes = max_idle_bytes
        self._buffers: list[np.ndarray] = []
        self._starts: dict[int, int] = {}
        """Where the aligned part of each tracked buffer starts, by `id`: finding an address
        costs a microsecond."""
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An uninitialized C-contiguous array, from an idle buffer when one is big enough."""
        nbytes = math.prod(shape) * dtype.itemsize
        with self._lock:
            buffer = self._take(nbytes)
            start = self._starts.get(id(buffer))
        if start is None:
            start = -buffer.ctypes.data % ALIGNMENT
        array = np.ndarray(shape, dtype, buffer, start)  # its base: the buffer
        if nbytes >= LARGE_BYTES and _REFCOUNTS_EXACT:
            weakref.finalize(array, self._released)
        return array

    def trim(self) -> None:
        """Return idle large buffers to the system, and idle ones beyond the cap."""
        with self._lock:
            self._timer = None
            kept, idle = [], 0
            for buffer in self._buffers:
                if sys.getrefcount(buffer) > _POOL_ONLY:  # a user still holds it
                    kept.append(buffer)
                elif buffer.nbytes < LARGE_BYTES and idle + buffer.nbytes <= self.max_idle_bytes:
                    idle += buffer.nbytes
                    kept.append(buffer)
            self._keep(kept)

    def _released(self) -> None:
        """A large result is gone: trim once it has sat idle a while (a batch of the same size
        in the meantime takes it again)."""
        with self._lock:
            if self._timer is None:
                self._timer = threading.Timer(IDLE_SECONDS, self.trim)
                self._timer.daemon = True
                self._timer.start()

    def _take(self, nbytes: int) -> np.ndarray:
        best, idle_bytes = None, 0
        for buffer in self._buffers:  # no enumerate: its cached tuple would hold a reference
            if sys.getrefcount(buffer) > _POOL_ONLY:
                continue
            idle_bytes += buffer.nbytes
            fits = nbytes + ALIGNMENT <= buffer.nbytes <= 2 * nbytes + _SMALL
            if fits and (best is None or buffer.nbytes < best.nbytes):
                best = buffer
        if best is not None:
            return best
        if idle_bytes + nbytes > self.max_idle_bytes or len(self._buffers) >= _TRACKED:
            self._drop_idle()
        buffer = np.empty(nbytes + ALIGNMENT, np.uint8)
        if _REFCOUNTS_EXACT and len(self._buffers) < _TRACKED:
            self._buffers.append(buffer)
            self._starts[id(buffer)] = -buffer.ctypes.data % ALIGNMENT
        return buffer

    def _drop_idle(self) -> None:
        self._keep([b for b in self._buffers if sys.getrefcount(b) > _POOL_ONLY])

    def _keep(self, buffers: list[np.ndarray]) -> None:
        """Track only ``buffers`` from now on."""
        self._buffers = buffers
        self._starts = {id(b): self._starts[id(b)] for b in buffers}

    @property
    def held_bytes(self) -> int:
        return sum(b.nbytes for b in self._buffers)
