"""The job's coordination service, in a small process of its own started by process 0.

JAX's coordination service aborts every process of the job when the process hosting it dies;
hosted apart, and in its recoverable mode, a dead peer reaches the others as a Python error
instead. The service process exits a grace period after its parent closes its stdin (or dies).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from typing import IO

__all__ = ["start_service"]

_SERVICE = r"""
import sys, time
from jax._src.lib import _jax
port, count, heartbeat, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
service = _jax.get_distributed_runtime_service(
    f"[::]:{port}", count, heartbeat_timeout=heartbeat, cluster_register_timeout=timeout,
    shutdown_timeout=timeout, recoverable=True)
print("ready", flush=True)
sys.stdin.read()
time.sleep(min(timeout, 5))
service.shutdown()
"""


def start_service(port: int, num_processes: int, heartbeat: int, timeout: int) -> subprocess.Popen:
    """A running service process; close its stdin to stop it. What it writes after it is
    ready goes on to this process's stderr: a pipe nobody read would fill, and then block the
    service and every peer waiting on it.

    Raises:
        RuntimeError: the service did not start (the port is taken, say).
    """
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SERVICE,
            str(port),
            str(num_processes),
            str(heartbeat),
            str(timeout),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    said = []
    for line in process.stdout:  # type: ignore[union-attr]
        if line.strip() == b"ready":
            break
        said.append(line)
    else:
        process.kill()
        process.wait()
        error = b"".join(said).decode(errors="replace")[-800:]
        raise RuntimeError(f"the coordination service on port {port} did not start: {error}")
    threading.Thread(
        target=_forward, args=(process.stdout,), name="ember-service-output", daemon=True
    ).start()
    return process


def _forward(stream: IO[bytes]) -> None:
    """Copy the service's output to stderr until it exits (dropping it if stderr is gone)."""
    with stream:
        for line in stream:
            with contextlib.suppress(OSError):
                os.write(2, line)
