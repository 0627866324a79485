"""Large weights in 2 MiB pages, so that rows read at random cost no page walk.

A lookup, a bag or a head reads rows scattered over a whole table. In 4 KiB pages, a table of
more than a few MB outgrows the TLB, and almost every row read then waits on a page-table walk
as well as on memory: 2M int8 rows (272 MB) in torch's own pages bagged at 0.64x the rate of
the same bytes in 2 MiB pages, torch's kernel both times. numpy already asks for 2 MiB pages
when it allocates large arrays; torch's allocator and others do not.

At `load`, every weight of `MIN_BYTES` or more is advised `MADV_HUGEPAGE`, and the pages it
already has are moved into 2 MiB pages by `MADV_COLLAPSE` (Linux 6.1 and later). The kernel
copies them, about 0.3 s per GB, so this runs in a background thread while the model already
serves: the contents never change, only where they sit. It is advice: memory that cannot take
it (a mapped checkpoint file, an older kernel, transparent huge pages set to ``never``) stays as
it is. Only whole 2 MiB pages inside a weight are advised, never memory around it.

``EMBER_HUGE_PAGES=0`` in the environment turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
import threading
import time
from collections.abc import Iterable

import numpy as np

__all__ = ["MIN_BYTES", "PAGE_BYTES", "advise", "enabled", "wait"]

PAGE_BYTES = 2 << 20
"""The size of a huge page on x86-64 and most arm64 kernels."""

MIN_BYTES = 8 << 20
"""Weights from this size up are advised: 4 KiB pages' TLB reach on recent x86 cores (2048
entries) is 8 MB, so smaller tables rarely miss it."""

_MADV_HUGEPAGE = 14
_MADV_COLLAPSE = 25
"""Linux's advice codes (``asm-generic/mman-common.h``); Python 3.11's `mmap` lacks the second."""

_pending: list[threading.Thread] = []
_lock = threading.Lock()


def enabled() -> bool:
    """Whether loads advise huge pages: on Linux, unless ``EMBER_HUGE_PAGES=0``.

    Raises:
        ValueError: ``EMBER_HUGE_PAGES`` is set to something else than 0 or 1.
    """
    setting = os.environ.get("EMBER_HUGE_PAGES", "1")
    if setting not in ("0", "1"):
        raise ValueError(f"EMBER_HUGE_PAGES must be 0 or 1, got {setting!r}")
    return setting == "1" and sys.platform == "linux"


def _whole_pages(array: np.ndarray) -> tuple[int, int] | None:
    """The start and length of the 2 MiB pages that lie wholly inside ``array``'s memory."""
    start = array.ctypes.data
    first = -(-start // PAGE_BYTES) * PAGE_BYTES
    end = (start + array.nbytes) // PAGE_BYTES * PAGE_BYTES
    return (first, end - first) if end > first else None


def advise(weights: Iterable[np.ndarray]) -> None:
    """Start moving each C-contiguous weight of `MIN_BYTES` or more into huge pages."""
    if not enabled():
        return
    ranges = []
    for array in weights:
        if array.nbytes >= MIN_BYTES and array.flags.c_contiguous:
            pages = _whole_pages(array)
            if pages is not None:
                ranges.append((array, *pages))
    if not ranges:
        return
    thread = threading.Thread(target=_collapse, args=(ranges,), name="ember-huge-pages")
    thread.daemon = True
    with _lock:
        _pending[:] = [t for t in _pending if t.is_alive()]
        _pending.append(thread)
    thread.start()


def _collapse(ranges: list[tuple[np.ndarray, int, int]]) -> None:
    """Advise each range (its array held, so its memory stays mapped until done). The calls
    release the GIL; a refusal (EINVAL, EAGAIN, ENOMEM) leaves the pages as they were."""
    madvise = _libc_madvise()
    if madvise is None:
        return
    for _array, start, length in ranges:
        if madvise(start, length, _MADV_HUGEPAGE) == 0:
            madvise(start, length, _MADV_COLLAPSE)


@functools.cache
def _libc_madvise():
    path = ctypes.util.find_library("c")
    if path is None:
        return None
    madvise = ctypes.CDLL(path, use_errno=True).madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise


def wait(timeout: float | None = None) -> bool:
    """Wait up to ``timeout`` seconds (None: as long as it takes) for the advice that loads
    started; whether all of it is done."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with _lock:
        threads = list(_pending)
    for thread in threads:
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    with _lock:
        _pending[:] = [t for t in _pending if t.is_alive()]
        return not _pending
