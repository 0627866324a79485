"""Kernels compiled on a background thread.

numba compiles a kernel in seconds and caches it on disk; on a fresh install every kernel a
model uses would be compiled inside its first `load`. Instead a `load` asks for its kernels
here and returns, and lookups run through numpy (`numpy_gather`, the reference decoders) until
their kernel is ready. With the disk cache warm, a kernel is ready in milliseconds.

``EMBER_COMPILE=sync`` in the environment compiles each kernel in the thread that first needs
it instead, so that every lookup runs compiled (what the tests and benchmarks use).

At exit, the kernel being compiled is finished (numba writes it to its cache) and the rest of
the queue is dropped. A fork waits for the kernel being compiled, so that the child never
inherits a compiler held by a thread it does not have; the child compiles what it needs itself.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
import time
import warnings
from collections.abc import Callable, Hashable, Iterable

__all__ = ["Kernel", "kernel", "synchronous", "wait"]

_kernels: dict[Hashable, Kernel] = {}
_lock = threading.Lock()
_queue: queue.SimpleQueue[Kernel | None] = queue.SimpleQueue()
_worker: threading.Thread | None = None
_stopping = False
_compiling = threading.Lock()
"""Held by the worker while it compiles, and by a fork in progress."""


def synchronous() -> bool:
    """Whether kernels compile in the calling thread (``EMBER_COMPILE=sync``).

    Raises:
        ValueError: ``EMBER_COMPILE`` is set to something else than "sync" or "background".
    """
    mode = os.environ.get("EMBER_COMPILE", "background")
    if mode not in ("sync", "background"):
        raise ValueError(f"EMBER_COMPILE must be 'sync' or 'background', got {mode!r}")
    return mode == "sync"


class Kernel:
    """One compiled specialization of a kernel; ``warm()`` calls it once on tiny arrays,
    which makes numba compile it (or load it from its cache)."""

    __slots__ = ("_done", "_requested", "_warm", "error", "name", "ready")

    def __init__(self, name: str, warm: Callable[[], object]) -> None:
        self.name = name
        self.ready = False
        self.error: BaseException | None = None
        self._warm = warm
        self._requested = False
        self._done = threading.Event()

    def request(self) -> bool:
        """Compile this kernel (now, or queued for the background thread); whether it is
        ready now."""
        if self.ready or self._requested:
            return self.ready
        in_background = not synchronous()
        with _lock:
            if self._requested:
                return self.ready
            self._requested = True
            if in_background:
                _start_worker()
                _queue.put(self)
                return False
        self._compile()
        return self.ready

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until this requested kernel is compiled (or failed); whether it is ready."""
        self._done.wait(timeout)
        return self.ready

    def _compile(self) -> None:
        try:
            self._warm()
        except Exception as exc:  # a kernel that cannot compile leaves the numpy path serving
            self.error = exc
            warnings.warn(
                f"ember could not compile its {self.name} kernel ({exc}); "
                "these lookups stay on the slower numpy path",
                RuntimeWarning,
                stacklevel=2,
            )
        else:
            self.ready = True
        finally:
            self._done.set()


def kernel(key: Hashable, name: str, warm: Callable[[], object]) -> Kernel:
    """The one `Kernel` for ``key``, made with ``name`` and ``warm`` the first time."""
    found = _kernels.get(key)
    if found is None:
        with _lock:
            found = _kernels.setdefault(key, Kernel(name, warm))
    return found


def wait(timeout: float | None = None, kernels: Iterable[Kernel] | None = None) -> bool:
    """Wait, up to ``timeout`` seconds in all, for the requested ``kernels`` (every requested
    one when None); whether all of them are ready."""
    if kernels is None:
        with _lock:  # a load on another thread may be adding to the table
            kernels = list(_kernels.values())
    kernels = [k for k in kernels if k._requested]
    deadline = None if timeout is None else time.monotonic() + timeout
    for k in kernels:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not k.wait(left):
            return False
    return all(k.ready for k in kernels)


def _start_worker() -> None:
    global _worker
    if _worker is None:
        _worker = threading.Thread(target=_work, name="ember-compile", daemon=True)
        _worker.start()
        atexit.register(_stop)


def _work() -> None:
    while True:
        k = _queue.get()
        if k is None or _stopping:
            return
        with _compiling:
            k._compile()


def _stop() -> None:
    """Let the kernel in progress finish (a compiler killed mid-way can crash the exit)."""
    global _stopping
    _stopping = True
    _queue.put(None)
    if _worker is not None:
        _worker.join()


def _forget_in_child() -> None:
    """After a fork: no worker, and every kernel not yet compiled is asked for again."""
    global _worker, _queue, _lock, _compiling
    _worker, _queue, _lock, _compiling = (
        None,
        queue.SimpleQueue(),
        threading.Lock(),
        threading.Lock(),
    )
    for k in _kernels.values():
        if not k.ready:
            k._requested, k._done = False, threading.Event()


os.register_at_fork(
    before=lambda: _compiling.acquire(),
    after_in_parent=lambda: _compiling.release(),
    after_in_child=_forget_in_child,
)
