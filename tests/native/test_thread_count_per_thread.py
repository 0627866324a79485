"""numba's thread count belongs to the thread that sets it; ember's memory of what it set
must too, or a new thread that is given a finished thread's id skips setting its count."""

from __future__ import annotations

import threading

import numba
import pytest

from ember.engine.backends.native.threads import use_threads


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one numba thread: nothing to set")
def test_a_new_thread_on_a_finished_threads_id_sets_its_count():
    seen: list[tuple[int, int]] = []
    ids: set[int] = set()
    reused = 0
    for _ in range(20):

        def run() -> None:
            use_threads(1)
            seen.append((threading.get_ident(), numba.get_num_threads()))

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        ident, count = seen[-1]
        reused += ident in ids
        ids.add(ident)
        assert count == 1, f"num_threads=1 ran on {count} threads (thread id reused: {reused})"
    if not reused:
        pytest.skip("no thread id was reused: the case did not arise")
