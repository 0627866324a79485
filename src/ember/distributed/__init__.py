"""Several processes, on one host or many, serving one sharded table: `initialize` joins the
job (on `jax.distributed`), `devices` lists every device with global ids, `ember launch -n N`
starts N local processes.

    import ember.distributed as dist
    dist.initialize("10.0.0.1:9876", num_processes=2, process_id=rank, local_cpu_devices=2)
    session = InferenceSession(devices=dist.devices())
"""

from .launch import launch
from .runtime import (
    devices,
    initialize,
    is_initialized,
    process_count,
    process_index,
    shutdown,
)

__all__ = [
    "devices",
    "initialize",
    "is_initialized",
    "launch",
    "process_count",
    "process_index",
    "shutdown",
]
