"""Shared test setup: eight virtual CPU devices for the XLA backend (the flag must be set before
jax is first imported), native kernels compiled when first needed rather than in the background
(so that every lookup test runs the compiled kernels; tests/native/test_background_compile.py
covers the numpy path that serves while they compile), and the backends every lookup test runs
on."""

from __future__ import annotations

import os

import pytest

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()

try:
    import jax  # noqa: F401

    BACKENDS = ["native", "xla"]
except ImportError:  # the native backend alone; CI installs jax with the test extra
    BACKENDS = ["native"]


os.environ.setdefault("EMBER_COMPILE", "sync")

collect_ignore = ["distributed/worker.py"]  # a process of a job, started by its tests

_SESSIONS: dict[str, object] = {}


@pytest.fixture(autouse=True, scope="session")
def parallel_kernels_on_a_busy_machine():
    """Parallel kernels asked for run in parallel however busy the machine is, so that the
    tests cover them (ember's launch would give a busy machine the single-thread ones)."""
    from ember.engine.backends.native.kernels import launch

    launch.GATE = launch.LoadGate(1 << 16, runnable=lambda: None)


@pytest.fixture(params=BACKENDS, scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend's name, for `InferenceSession(backend=...)`."""
    return request.param


@pytest.fixture(scope="session")
def session(backend: str):
    """A session on each backend, shared by the tests (two native threads)."""
    from ember.engine import InferenceSession

    if backend not in _SESSIONS:
        threads = 2 if backend == "native" else None
        _SESSIONS[backend] = InferenceSession(num_threads=threads, backend=backend)
    return _SESSIONS[backend]


@pytest.fixture(scope="session")
def quantized_rows():
    """`make(name, rows, values_per_row, seed)`: sample rows of a format's blocks
    (`ember.quant.samples.sample_table`)."""
    from ember.quant.samples import sample_table

    return sample_table
