"""Start the local processes of a job (`ember launch`), each told its place through the
environment that `ember.distributed.initialize()` reads.

On one host: `ember launch -n 2 script.py` starts processes 0 and 1 with a free local port.
On several: each host starts its share against one coordinator, e.g. on the first host
`ember launch -n 2 --coordinator 10.0.0.1:9876 --num-processes 4 script.py` and on the second
the same with `--first-id 2`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from .runtime import ENV_COORDINATOR, ENV_LOCAL_CPU_DEVICES, ENV_NUM_PROCESSES, ENV_PROCESS_ID

__all__ = ["free_port", "launch"]


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
    """Run `command` (a Python script and its arguments) as `local_processes` processes and
    return the first failing exit code, or 0. When one process fails, the others get `grace`
    seconds to fail or finish before they are killed.

    Raises:
        ValueError: the ids do not fit in the job.
    """
    total = num_processes if num_processes is not None else first_id + local_processes
    if local_processes < 1 or first_id < 0 or first_id + local_processes > total:
        raise ValueError(
            f"processes {first_id}..{first_id + local_processes - 1} do not fit a job of {total}"
        )
    coordinator = coordinator or f"127.0.0.1:{free_port()}"
    processes = []
    for rank in range(first_id, first_id + local_processes):
        env = dict(os.environ)
        env.update({ENV_COORDINATOR: coordinator, ENV_NUM_PROCESSES: str(total)})
        env[ENV_PROCESS_ID] = str(rank)
        if local_cpu_devices is not None:
            env[ENV_LOCAL_CPU_DEVICES] = str(local_cpu_devices)
        processes.append(subprocess.Popen([sys.executable, *command], env=env))
    return _wait(processes, grace)


def _wait(processes: list[subprocess.Popen], grace: float) -> int:
    failed_at = None
    while True:
        codes = [p.poll() for p in processes]
        failure = next((c for c in codes if c not in (None, 0)), None)
        if failure is not None and failed_at is None:
            failed_at = time.monotonic()
        if all(c is not None for c in codes):
            return failure or 0
        if failed_at is not None and time.monotonic() - failed_at > grace:
            for p in processes:
                if p.poll() is None:
                    p.kill()
            return failure
        time.sleep(0.05)
