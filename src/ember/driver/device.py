"""Real devices a session runs on: the host CPU, and the accelerators JAX sees.

>>> CPU(), str(CPU(1)), CPU().api
(CPU(id=0), 'cpu:1', 'cpu')
>>> 0 < CPU().stats["free_memory"] <= CPU().stats["total_memory"] == CPU().max_single_alloc_size
True
>>> accelerator_count()
0
"""

from __future__ import annotations

import functools
import os

__all__ = ["CPU", "Accelerator", "Device", "accelerator_count"]


class Device:
    """A device by kind and index; `label` is MAX's spelling ("cpu", "gpu")."""

    label = ""

    def __init__(self, id: int = 0) -> None:
        if isinstance(id, bool) or not isinstance(id, int) or id < 0:
            raise ValueError(f"a device id is an int >= 0, got {id!r}")
        self.id = id

    @property
    def is_host(self) -> bool:
        return self.label == "cpu"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.id == self.id

    def __hash__(self) -> int:
        return hash((self.label, self.id))

    def __str__(self) -> str:
        return f"{self.label}:{self.id}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id})"


class CPU(Device):
    """The host CPU; several ids name logical CPU devices that share host memory."""

    label = "cpu"
    api = "cpu"
    """The API that programs the device, as MAX names it."""

    @property
    def stats(self) -> dict[str, int]:
        """The host's memory now, in bytes: `free_memory` (what the kernel reports available)
        and `total_memory`. Every CPU device shares it."""
        return {"free_memory": _host_memory("MemAvailable"), "total_memory": _host_memory()}

    @property
    def max_single_alloc_size(self) -> int:
        """The largest one allocation could be: all of the host's memory."""
        return _host_memory()


class Accelerator(Device):
    """An accelerator by index.

    Raises:
        ValueError: there is no accelerator with that index (the error names what there is).
    """

    label = "gpu"

    def __init__(self, id: int = 0) -> None:
        super().__init__(id)
        if id >= accelerator_count():
            raise ValueError(
                f"no accelerator {id}: JAX sees {accelerator_count()} accelerators (install "
                "ember[xla] with jax's CUDA or TPU wheels to use one); devices available: CPU()"
            )


@functools.cache
def accelerator_count() -> int:
    """Accelerators (GPUs, TPUs) that JAX sees; 0 without jax or without an accelerator."""
    try:
        import jax
    except ImportError:
        return 0
    devices = jax.devices()
    return 0 if devices[0].platform == "cpu" else len(devices)


def _host_memory(field: str = "MemTotal") -> int:
    """A /proc/meminfo field in bytes; elsewhere the page counts sysconf gives."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                name, _, value = line.partition(":")
                if name == field:
                    return int(value.split()[0]) * 1024
    except OSError:
        pass
    pages = "SC_PHYS_PAGES" if field == "MemTotal" else "SC_AVPHYS_PAGES"
    return os.sysconf(pages) * os.sysconf("SC_PAGE_SIZE")
