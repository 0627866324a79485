"""`background.wait()` with no kernels named reads the kernel table while a load on another
thread may be adding to it; it must never see the table change under it."""

from __future__ import annotations

import sys
import threading

import pytest

from ember.engine.backends.native.kernels import background


def test_wait_while_another_thread_adds_kernels(monkeypatch):
    monkeypatch.setattr(background, "_kernels", {})
    for i in range(2000):  # a table long enough that reading it spans many thread switches
        background.kernel(("waited", i), "waited", lambda: None)
    errors: list[BaseException] = []
    stop = threading.Event()

    def load() -> None:
        i = 0
        while not stop.is_set():
            background.kernel(("loaded", i), "loaded", lambda: None)
            i += 1

    def wait() -> None:
        try:
            for _ in range(300):
                background.wait(timeout=0)
        except BaseException as error:  # the race raised RuntimeError: changed size
            errors.append(error)
        finally:
            stop.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython allows
    try:
        threads = [threading.Thread(target=load), threading.Thread(target=wait)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        stop.set()
        sys.setswitchinterval(interval)
    assert not any(thread.is_alive() for thread in threads)
    if errors:
        pytest.fail(f"wait() raced with a load: {errors[0]!r}")
