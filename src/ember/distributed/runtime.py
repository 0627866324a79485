"""One job of several processes, on one host or many, on `jax.distributed` (gloo collectives
between CPU devices). Every process calls `initialize` with the same coordinator address and
process count and its own id; device ids are then global across the job.

A failure is an error within `timeout`, never a hang: a peer that never joins makes
`initialize` raise `TimeoutError`; a peer that dies makes the next cross-process lookup raise
`ember.errors.PeerLostError`.
"""

from __future__ import annotations

import math
import os
import subprocess
import threading
from typing import Any

from ember.driver import CPU, Accelerator, Device

from .service import start_service

__all__ = ["devices", "initialize", "is_initialized", "process_count", "process_index", "shutdown"]

ENV_COORDINATOR = "EMBER_COORDINATOR"
ENV_NUM_PROCESSES = "EMBER_NUM_PROCESSES"
ENV_PROCESS_ID = "EMBER_PROCESS_ID"
ENV_LOCAL_CPU_DEVICES = "EMBER_LOCAL_CPU_DEVICES"

_service: subprocess.Popen | None = None
_client: Any = None
_timeout_ms = 10_000


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_cpu_devices: int | None = None,
    timeout: float = 60.0,
) -> None:
    """Join the job. Arguments left out come from `ember launch`'s environment
    (EMBER_COORDINATOR, EMBER_NUM_PROCESSES, EMBER_PROCESS_ID, EMBER_LOCAL_CPU_DEVICES).

    Call it before anything else uses JAX. `timeout` (seconds) bounds the wait for every peer
    to join, and every cross-process exchange afterwards.

    Raises:
        ValueError: a missing or impossible argument.
        RuntimeError: already initialized, or JAX was used before.
        TimeoutError: not every process joined within `timeout`.
    """
    global _client, _service, _timeout_ms
    coordinator_address = coordinator_address or os.environ.get(ENV_COORDINATOR)
    num_processes = _int("num_processes", num_processes, ENV_NUM_PROCESSES, low=1)
    process_id = _int("process_id", process_id, ENV_PROCESS_ID, low=0)
    local_cpu_devices = _int(
        "local_cpu_devices", local_cpu_devices, ENV_LOCAL_CPU_DEVICES, low=1, required=False
    )
    if not coordinator_address or ":" not in coordinator_address:
        raise ValueError(f"coordinator_address is 'host:port', got {coordinator_address!r}")
    if process_id >= num_processes:
        raise ValueError(f"process_id {process_id} is not below num_processes {num_processes}")
    if timeout <= 0:
        raise ValueError(f"timeout is seconds > 0, got {timeout!r}")
    if _client is not None:
        raise RuntimeError("ember.distributed is already initialized; call shutdown() first")

    import jax
    from jax._src import distributed as jax_distributed
    from jax._src import xla_bridge
    from jax._src.lib import _jax

    if xla_bridge.backends_are_initialized():
        raise RuntimeError(
            "ember.distributed.initialize must run before anything uses JAX in this process"
        )
    seconds = max(1, math.ceil(timeout))
    _timeout_ms = seconds * 1000
    if local_cpu_devices is not None:
        jax.config.update("jax_num_cpu_devices", local_cpu_devices)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + f" --xla_cpu_collective_timeout_seconds={seconds}"
    ).strip()
    port = int(coordinator_address.rsplit(":", 1)[1])
    if process_id == 0:
        _service = start_service(port, num_processes, seconds, seconds)
    client = _jax.get_distributed_runtime_client(
        coordinator_address,
        process_id,
        init_timeout=seconds,
        shutdown_timeout=seconds,
        heartbeat_timeout=seconds,
        missed_heartbeat_callback=_missed_heartbeat,
        use_compression=True,
    )
    try:
        client.connect()
    except RuntimeError:
        _stop_service()
        raise TimeoutError(
            f"ember.distributed: not all {num_processes} processes joined "
            f"{coordinator_address} within {timeout:g} s"
        ) from None
    state = jax_distributed.global_state
    state.client, state.process_id, state.num_processes = client, process_id, num_processes
    state.coordinator_address = coordinator_address
    _client = client
    watchdog = threading.Timer(timeout, _lost, args=("exchanging device lists",))
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.devices()  # every process's devices, exchanged while all are known to be alive
    finally:
        watchdog.cancel()


def is_initialized() -> bool:
    return _client is not None


def devices() -> list[Device]:
    """Every device of the job, with global ids: `CPU(i)` is the i-th CPU device across all
    processes (process 0's first), as `DeviceRef.CPU(i)` names it in a graph."""
    import jax

    cpus = jax.devices("cpu")
    default = jax.devices()
    accelerators = [] if default[0].platform == "cpu" else default
    return [CPU(i) for i in range(len(cpus))] + [Accelerator(i) for i in range(len(accelerators))]


def process_index() -> int:
    import jax

    return jax.process_index()


def process_count() -> int:
    import jax

    return jax.process_count()


def shutdown() -> None:
    """Leave the job (waiting briefly for the others), and stop the service this process ran."""
    global _client
    from jax._src import distributed as jax_distributed

    state = jax_distributed.global_state
    try:
        if _client is not None:
            try:
                _client.wait_at_barrier("ember_shutdown", _timeout_ms)
                _client.shutdown()
            except RuntimeError:
                pass  # a peer is gone already: nothing to wait for
    finally:
        state.client = state.service = state.preemption_sync_manager = None
        _client = None
        _stop_service()


def _int(name: str, value: Any, env: str, *, low: int, required: bool = True) -> Any:
    if value is None:
        text = os.environ.get(env)
        if text is None:
            if required:
                raise ValueError(f"{name} is required (or set {env}, as `ember launch` does)")
            return None
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def _missed_heartbeat(*args: Any) -> None:
    """Given to JAX's client so that a failed connect raises in Python rather than aborting."""


def _lost(what: str) -> None:
    os.write(2, f"ember.distributed: a peer stopped answering while {what}\n".encode())
    os._exit(75)


def _stop_service() -> None:
    global _service
    if _service is not None:
        try:
            if _service.stdin:
                _service.stdin.close()
        except OSError:
            pass
        _service = None
