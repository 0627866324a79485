"""Parallel kernels give way to single-thread ones while other tasks take the cores, judged from
an injected count of ready tasks and an injected clock (no timing)."""

from __future__ import annotations

import sys
import threading
import time

import numba
import numpy as np
import pytest

from ember.engine.backends.native.kernels import launch as launch_module
from ember.engine.backends.native.kernels.gather import gather_rows, parallel_gather_call
from ember.engine.backends.native.kernels.launch import (
    PARALLEL_LAUNCH,
    LoadGate,
    launch,
    native_threads_running,
    runnable_tasks,
    running_threads,
    try_parallel,
)
from ember.engine.backends.native.kernels.out_of_range import ERROR as MODE_ERROR


class Machine:
    """What the gate reads: ready tasks (the caller included) and the time."""

    def __init__(self, runnable: int | None, own: int = 0) -> None:
        self.runnable, self.own, self.now, self.reads = runnable, own, 0.0, 0

    def count(self) -> int | None:
        self.reads += 1
        return self.runnable

    def gate(self, cores: int) -> LoadGate:
        return LoadGate(
            cores, self.count, lambda: self.now, refresh=0.01, hold=0.25, own=lambda: self.own
        )


def test_threads_run_in_parallel_only_where_each_finds_a_free_core():
    machine = Machine(runnable=1)  # the caller alone
    gate = machine.gate(cores=2)
    assert gate.has_room(2)
    machine.runnable, machine.now = 2, 1.0  # one other task ready: one core left
    assert not gate.has_room(2)
    assert gate.has_room(1)


def test_this_processs_own_native_workers_do_not_count_as_load():
    # torch's OpenMP worker spin-waiting after a call: the caller and it are ready to run
    assert Machine(runnable=2, own=1).gate(cores=2).has_room(2)
    # ...but a task of another process beside them still takes a core
    assert not Machine(runnable=3, own=1).gate(cores=2).has_room(2)


def test_a_worker_that_stops_spinning_between_the_reads_leaves_the_cores_free():
    counts = iter([2, 1])  # the worker was ready at the first read, asleep by the second
    gate = LoadGate(2, lambda: next(counts), lambda: 0.0, own=lambda: 0)
    assert gate.has_room(2)


def test_a_worker_that_starts_spinning_between_the_reads_does_not_close_the_gate():
    # torch's worker was asleep when its process's workers were counted and ready at the
    # machine's count just after; the next pair of reads sees it in both
    counts, owns = iter([2, 2, 2]), iter([0, 1])
    gate = LoadGate(2, lambda: next(counts), lambda: 0.0, own=lambda: next(owns))
    assert gate.has_room(2)


def test_a_load_seen_in_every_read_closes_the_gate():
    machine = Machine(runnable=3, own=1)
    assert not machine.gate(cores=2).has_room(2)
    assert machine.reads == 4


def test_the_count_is_read_at_most_once_per_refresh():
    machine = Machine(runnable=1)
    gate = machine.gate(cores=4)
    for step in range(10):
        machine.now = step * 0.001
        assert gate.has_room(4)
    assert machine.reads == 1
    machine.now = 0.011
    gate.has_room(4)
    assert machine.reads == 2


def test_a_busy_machine_keeps_parallel_kernels_off_for_the_hold():
    machine = Machine(runnable=3)
    gate = machine.gate(cores=2)
    assert not gate.has_room(2)
    assert machine.reads == 4  # a busy count is read again after counting own workers, 3 times
    machine.now = 0.011  # seen busy once: read again after the refresh, busy again
    assert not gate.has_room(2)
    machine.runnable = 1  # the load paused for a moment
    machine.now = 0.2
    assert not gate.has_room(2)  # busy at two reads in a row: held off
    assert machine.reads == 8
    machine.now = 0.262
    assert gate.has_room(2)


def test_a_load_seen_at_one_read_only_keeps_parallel_kernels_off_until_the_next():
    machine = Machine(runnable=3)
    gate = machine.gate(cores=2)
    assert not gate.has_room(2)
    machine.runnable, machine.now = 1, 0.011  # another process's moment of work, gone
    assert gate.has_room(2)


def test_a_system_that_does_not_count_ready_tasks_keeps_parallel_kernels():
    assert Machine(runnable=None).gate(cores=2).has_room(2)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/loadavg is Linux's")
def test_the_count_includes_the_caller():
    assert runnable_tasks() >= 1


@numba.njit(nogil=True)
def _spin(steps: int) -> int:
    """Busy for ``steps`` steps with the GIL released: a thread holding a core."""
    x = 1
    for _ in range(steps):
        x = x * 6364136223846793005 + 1
    return x


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/task is Linux's")
def test_a_python_thread_running_a_kernel_is_not_taken_for_a_native_worker():
    _spin(1)  # compiled before the thread starts
    stop = threading.Event()

    def busy() -> None:  # kernel calls until told to stop: however fast the machine is
        while not stop.is_set():
            _spin(400_000_000)

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        time.sleep(0.05)
        # a read may fall between two of its kernel calls, while it waits for the GIL
        running = next((r for _ in range(5) if thread.native_id in (r := running_threads())), set())
        assert thread.native_id in running
        assert threading.get_native_id() in running  # the caller, reading
        assert native_threads_running() == 0  # no native pool of this process is at work
    finally:
        stop.set()
        thread.join()


@pytest.mark.parametrize(("runnable", "ran"), [(1, "parallel"), (3, "serial")])
def test_launch_asks_the_gate(monkeypatch, runnable, ran):
    monkeypatch.setattr(launch_module, "GATE", Machine(runnable).gate(cores=64))
    monkeypatch.setattr(launch_module, "get_num_threads", lambda: 63)
    assert launch(lambda: "parallel", lambda: "serial") == ran


@pytest.mark.parametrize(("threads", "ran"), [(2, "parallel"), (3, "serial")])
def test_launch_asks_the_gate_for_the_threads_it_is_given(monkeypatch, threads, ran):
    # two cores, the caller alone: room for two threads, not three (numba's count unread)
    monkeypatch.setattr(launch_module, "GATE", Machine(runnable=1).gate(cores=2))
    monkeypatch.setattr(launch_module, "get_num_threads", lambda: 99)
    assert launch(lambda: "parallel", lambda: "serial", threads) == ran
    assert not PARALLEL_LAUNCH.locked()


def test_try_parallel_holds_the_pool_for_its_caller(monkeypatch):
    monkeypatch.setattr(launch_module, "GATE", Machine(runnable=1).gate(cores=2))
    assert try_parallel(2)
    try:
        assert PARALLEL_LAUNCH.locked()
        assert not try_parallel(2)  # another thread's kernel would run on one thread
    finally:
        PARALLEL_LAUNCH.release()
    monkeypatch.setattr(launch_module, "GATE", Machine(runnable=99).gate(cores=2))
    assert not try_parallel(2)
    assert not PARALLEL_LAUNCH.locked()


@pytest.mark.parametrize("runnable", [1, 99])
def test_a_direct_parallel_gather_gives_the_same_rows_on_a_quiet_or_busy_machine(
    monkeypatch, runnable
):
    monkeypatch.setattr(launch_module, "GATE", Machine(runnable).gate(cores=2))
    table = np.random.default_rng(0).standard_normal((300, 1024)).astype(np.float32)
    ids = np.random.default_rng(1).integers(0, 300, 200).astype(np.int32)
    out = np.zeros((200, 1024), np.float32)
    call = parallel_gather_call(table, np.dtype(np.int32), MODE_ERROR)
    assert call(ids, out.view(np.uint8), 2) == -1
    np.testing.assert_array_equal(out, table[ids])
    bad = ids.copy()
    bad[150] = 300
    assert call(bad, out.view(np.uint8), 2) == 150
    assert not PARALLEL_LAUNCH.locked()


def test_a_lookup_asked_for_in_parallel_on_a_busy_machine_gives_the_same_rows(monkeypatch):
    monkeypatch.setattr(launch_module, "GATE", Machine(runnable=99).gate(cores=2))
    table = np.random.default_rng(0).standard_normal((300, 1024)).astype(np.float32)
    ids = np.random.default_rng(1).integers(0, 300, 200)  # 800 KiB: a parallel-sized result
    out = np.zeros((200, 1024), np.float32)
    assert gather_rows(table, ids, 0, MODE_ERROR, out, True) == -1
    np.testing.assert_array_equal(out, table[ids])
