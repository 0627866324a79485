"""Start the local processes of a job (`ember launch`), each told its place through the
environment that `ember.distributed.initialize()` reads.

On one host: `ember launch -n 2 script.py` starts processes 0 and 1 with a free local port.
On several: each host starts its share against one coordinator, e.g. on the first host
`ember launch -n 2 --coordinator 10.0.0.1:9876 --num-processes 4 script.py` and on the second
the same with `--first-id 2`.

The launcher owns its processes: each runs in a process group of its own, so that a Ctrl-C
reaches it once, through the launcher, which passes SIGINT, SIGTERM and SIGHUP on to every
process and never returns while one still runs. On Linux a process also gets SIGTERM when the
launcher dies of a signal it cannot pass on (SIGKILL).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType, TracebackType

from .runtime import ENV_COORDINATOR, ENV_LOCAL_CPU_DEVICES, ENV_NUM_PROCESSES, ENV_PROCESS_ID

__all__ = ["free_port", "launch"]

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(
    command: Sequence[str],
    local_processes: int,
    *,
    coordinator: str | None = None,
    num_processes: int | None = None,
    first_id: int = 0,
    local_cpu_devices: int | None = None,
    grace: float = 5.0,
) -> int:
    """Run `command` (a Python script and its arguments) as `local_processes` processes.

    Returns 0 when every process succeeded, else the first failure's exit status (128 + N for
    a process ended by signal N). When one process fails, the others get `grace` seconds to
    fail or finish before they are stopped. A SIGINT, SIGTERM or SIGHUP to the launcher is
    sent on to every process, which gets `grace` seconds to exit (none after a second
    signal) before it is killed; the launcher then returns 128 + N.

    Raises:
        ValueError: the ids do not fit in the job.
    """
    total = num_processes if num_processes is not None else first_id + local_processes
    if local_processes < 1 or first_id < 0 or first_id + local_processes > total:
        raise ValueError(
            f"processes {first_id}..{first_id + local_processes - 1} do not fit a job of {total}"
        )
    coordinator = coordinator or f"127.0.0.1:{free_port()}"
    processes: dict[int, subprocess.Popen] = {}
    with _Signals() as signals:
        try:
            for rank in range(first_id, first_id + local_processes):
                if signals.received:
                    break
                env = dict(os.environ)
                env.update({ENV_COORDINATOR: coordinator, ENV_NUM_PROCESSES: str(total)})
                env[ENV_PROCESS_ID] = str(rank)
                if local_cpu_devices is not None:
                    env[ENV_LOCAL_CPU_DEVICES] = str(local_cpu_devices)
                processes[rank] = subprocess.Popen(
                    [sys.executable, *command],
                    env=env,
                    process_group=0,
                    preexec_fn=_ended_with(os.getpid()),
                )
            return _supervise(processes, grace, signals)
        finally:  # an error of the launcher's own leaves nothing running either
            for process in processes.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()


def _ended_with(launcher: int) -> Callable[[], None] | None:
    """For a child, before it runs: a SIGTERM when the launcher dies, even of SIGKILL, which
    it cannot pass on (Linux's parent-death signal; elsewhere nothing)."""
    if not sys.platform.startswith("linux"):
        return None

    def ask() -> None:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != launcher:  # it died before the signal was asked for
            os.kill(os.getpid(), signal.SIGTERM)

    return ask


_PR_SET_PDEATHSIG = 1


class _Signals:
    """Records the forwarded signals the launcher receives while it supervises (in the main
    thread; elsewhere Python delivers none), instead of dying of them."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for number in FORWARDED_SIGNALS:
                self._previous[number] = signal.signal(number, self._record)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType
    ) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _record(self, number: int, frame: FrameType | None) -> None:
        self.received.append(number)


def _supervise(processes: dict[int, subprocess.Popen], grace: float, signals: _Signals) -> int:
    failed: int | None = None
    failed_at, failure = 0.0, 0
    while True:
        if signals.received:
            number = signals.received[0]
            _stop(processes, number, grace, signals)
            return 128 + number
        codes = {rank: p.poll() for rank, p in processes.items()}
        if failed is None:
            failed = next((r for r, c in codes.items() if c not in (None, 0)), None)
            if failed is not None:
                failed_at, failure = time.monotonic(), _status(codes[failed])
                _say(f"process {failed} failed ({_describe(codes[failed])})")
        if all(c is not None for c in codes.values()):
            return failure
        if failed is not None and time.monotonic() - failed_at > grace:
            stopped = _stop(processes, signal.SIGTERM, grace, signals)
            if stopped:
                _say(
                    f"stopped {_processes(stopped)}, still running {grace:g} s after "
                    f"process {failed} failed"
                )
            return failure
        time.sleep(0.05)


def _stop(
    processes: dict[int, subprocess.Popen], number: int, grace: float, signals: _Signals
) -> list[int]:
    """Send signal `number` to every process still running, kill those still running after
    `grace` seconds (or at a further signal to the launcher), and reap all; the ranks sent to."""
    running = [rank for rank, p in processes.items() if p.poll() is None]
    for rank in running:
        processes[rank].send_signal(number)  # none to one that exited
    seen = len(signals.received)
    deadline = time.monotonic() + grace
    while any(processes[r].poll() is None for r in running):
        if time.monotonic() >= deadline or len(signals.received) > seen:
            killed = [r for r in running if processes[r].poll() is None]
            _say(f"killed {_processes(killed)}, still running after {signal.Signals(number).name}")
            for rank in killed:
                processes[rank].kill()
            break
        time.sleep(0.02)
    for rank in running:
        processes[rank].wait()
    return running


def _processes(ranks: list[int]) -> str:
    return f"process{'es' if len(ranks) > 1 else ''} {', '.join(map(str, ranks))}"


def _status(code: int) -> int:
    return code if code >= 0 else 128 - code


def _describe(code: int) -> str:
    """A return code in words: "exit status 3", "ended by SIGKILL"."""
    if code >= 0:
        return f"exit status {code}"
    try:
        return f"ended by {signal.Signals(-code).name}"
    except ValueError:
        return f"ended by signal {-code}"


def _say(message: str) -> None:
    print(f"ember launch: {message}", file=sys.stderr, flush=True)
