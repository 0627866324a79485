"""Shared test setup: four virtual CPU devices for the XLA backend (the flag must be set before
jax is first imported), and the backends every lookup test runs on."""

from __future__ import annotations

import os

import pytest

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()

try:
    import jax  # noqa: F401

    BACKENDS = ["native", "xla"]
except ImportError:  # the native backend alone; CI installs jax with the test extra
    BACKENDS = ["native"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend's name, for `InferenceSession(backend=...)`."""
    return request.param
