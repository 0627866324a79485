"""Shared test setup: eight virtual CPU devices for the XLA backend (the flag must be set before
jax is first imported), and the backends every lookup test runs on."""

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


collect_ignore = ["distributed/worker.py"]  # a process of a job, started by its tests

_SESSIONS: dict[str, object] = {}


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
    """`make(name, rows, values_per_row, seed)`: uint8 rows of `name`'s blocks. Formats ember
    quantizes get standard normal data quantized; decode-only ones (the grid i-quants, NVFP4)
    get random blocks, keeping those whose values are all finite."""
    import numpy as np

    from ember.quant import FORMATS

    def make(name: str, rows: int, values_per_row: int, seed: int = 0) -> np.ndarray:
        fmt = FORMATS[name]
        rng = np.random.default_rng(seed)
        if fmt.quantizable:
            values = rng.standard_normal((rows, values_per_row)).astype(np.float32)
            return fmt.quantize(values)
        count = rows * values_per_row // fmt.block_elements
        blocks = np.zeros((0, fmt.block_bytes), np.uint8)
        while len(blocks) < count:
            candidates = rng.integers(0, 256, (2 * count + 16, fmt.block_bytes), dtype=np.uint8)
            with np.errstate(all="ignore"):
                finite = np.isfinite(fmt.dequantize(candidates)).all(axis=1)
            blocks = np.concatenate([blocks, candidates[finite]])
        return blocks[:count].reshape(rows, -1)

    return make
