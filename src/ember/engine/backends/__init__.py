"""Backends behind one interface (`base.Backend`): `native` runs numba kernels on the host CPU;
`xla` runs JAX on CPU, GPU and TPU devices. `auto` takes native when every device of the
session is the host CPU (and the process is not one of a job of several), and XLA otherwise."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ember.driver import Device

from .base import Backend, Executable

__all__ = ["BACKEND_NAMES", "Backend", "Executable", "make_backend"]

BACKEND_NAMES = ("auto", "native", "xla")


def make_backend(
    name: str,
    devices: Sequence[Device],
    num_threads: int | None,
    max_idle_bytes: int | None = None,
) -> Backend:
    """The backend called `name` (or chosen for `devices` when "auto").

    Raises:
        ValueError: an unknown name, `num_threads` or `max_idle_bytes` for a backend that has
            no threads or buffer pool to set, or "native" for several devices in a job of
            several processes (whose devices are not all this process's).
        ImportError: XLA was asked for, and jax is not installed.
    """
    if name not in BACKEND_NAMES:
        raise ValueError(f"backend must be one of {BACKEND_NAMES}, got {name!r}")
    if name == "auto":
        name = "native" if all(d.is_host for d in devices) and not _in_job() else "xla"
    if name == "native":
        if len(devices) > 1 and _in_job():
            raise ValueError(
                "backend='native' runs every device in this one process, but this process is "
                "in a job of several, which share the devices: use backend='xla' (or 'auto')"
            )
        from .native import NativeBackend

        return NativeBackend(num_threads, max_idle_bytes)
    if num_threads is not None:
        raise ValueError("num_threads sets the native backend's CPU threads; XLA sets its own")
    if max_idle_bytes is not None:
        raise ValueError("max_idle_bytes caps the native backend's buffer pool; XLA has its own")
    try:
        from .xla import XlaBackend
    except ImportError as exc:
        raise ImportError(
            f"the xla backend needs jax ({exc}); install it with: pip install 'ember[xla]' "
            "(or jax[cuda12] for NVIDIA GPUs)"
        ) from exc
    return XlaBackend()


def _in_job() -> bool:
    """Whether this process joined a job of several (`ember.distributed.initialize`)."""
    runtime = sys.modules.get("ember.distributed.runtime")
    return runtime is not None and runtime.is_initialized()
