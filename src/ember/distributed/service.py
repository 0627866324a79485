"""The job's coordination service, in a small process of its own started by process 0.

JAX's coordination service aborts every process of the job when the process hosting it dies;
hosted apart, and in its recoverable mode, a dead peer reaches the others as a Python error
instead. The service process exits a grace period after its parent closes its stdin (or dies).
"""

from __future__ import annotations

import subprocess
import sys

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
    """A running service process; close its stdin to stop it.

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
        stderr=subprocess.PIPE,
    )
    line = process.stdout.readline().strip() if process.stdout else b""
    if line != b"ready":
        process.kill()
        error = process.stderr.read().decode(errors="replace")[-800:] if process.stderr else ""
        raise RuntimeError(f"the coordination service on port {port} did not start: {error}")
    return process
