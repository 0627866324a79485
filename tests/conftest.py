"""Shared test setup: eight virtual CPU devices for the XLA backend (the flag must be set before
jax is first imported), native kernels compiled when first needed rather than in the background
(so that every lookup test runs the compiled kernels; tests/native/test_background_compile.py
covers the numpy path that serves while they compile), and the backends every lookup test runs
on."""

from __future__ import annotations

import os

import numpy as np
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


EPS32 = float(np.finfo(np.float32).eps)


def assert_same_bits(got, want, *, nan_meets_nan: bool = False) -> None:
    """The same dtype, shape and bits, NaN payloads included. With `nan_meets_nan`, a NaN only
    has to meet a NaN: for references whose NaN payloads are numpy's choice, not a format's."""
    got, want = np.ascontiguousarray(got), np.ascontiguousarray(want)
    assert got.dtype == want.dtype, f"dtype {got.dtype}, want {want.dtype}"
    assert got.shape == want.shape, f"shape {got.shape}, want {want.shape}"
    unsigned = f"u{got.dtype.itemsize}"
    got_bits, want_bits = got.view(unsigned), want.view(unsigned)
    differ = got_bits != want_bits
    if nan_meets_nan:
        nan = np.isnan(want.astype(np.float32))
        np.testing.assert_array_equal(np.isnan(got.astype(np.float32)), nan)
        differ &= ~nan
    if differ.any():
        at = tuple(int(i) for i in np.argwhere(differ)[0])
        raise AssertionError(
            f"bits differ at {int(differ.sum())} of {differ.size} places; first at {at}: "
            f"{int(got_bits[at]):#x}, want {int(want_bits[at]):#x}"
        )


def assert_within_dot_bound(logits, hidden, table) -> None:
    """|logit - exact| <= width * eps32 * sum_i |h_i w_i|: any float32 sum of the width's
    products (each product and partial sum rounded once) errs by at most that, in any order.
    The exact values are those of the stored inputs, widened to float64."""
    h, w = np.asarray(hidden, np.float64), np.asarray(table, np.float64)
    exact = h @ w.T
    bound = h.shape[-1] * EPS32 * (np.abs(h) @ np.abs(w).T)
    assert logits.dtype == np.float32 and logits.shape == exact.shape
    assert np.all(np.abs(logits - exact) <= bound), np.max(np.abs(logits - exact) - bound)


def assert_within_int8_bound(logits, hidden, table, block: int = 256) -> None:
    """|logit - exact| for hidden states quantized to 8 bits per `block` values (scale
    max|h|_block / 127): rounding moves each h_i by at most max|h|_block / 254, so the logit by
    that times the block's sum |w_i|; plus the dot bound above for the float32 arithmetic
    (scales and sums), counted on sum |h| * max |w| since a block's integer sums and scales
    may be larger than its products."""
    h, w = np.asarray(hidden, np.float64), np.asarray(table, np.float64)
    exact = h @ w.T
    absmax = np.abs(h).reshape(h.shape[0], -1, block).max(axis=-1)
    rounding = (absmax / 254) @ np.abs(w).reshape(w.shape[0], -1, block).sum(axis=-1).T
    arithmetic = h.shape[-1] * EPS32 * np.abs(h).sum(axis=1, keepdims=True) * np.abs(w).max(1)
    assert logits.dtype == np.float32 and logits.shape == exact.shape
    error = np.abs(logits - exact)
    assert np.all(error <= rounding + arithmetic), np.max(error - rounding - arithmetic)


@pytest.fixture
def count_calls(monkeypatch):
    """``count_calls(owner, name)``: a one-item list counting the calls of ``owner.name`` from
    now on (the method patched for the test)."""

    def patch(owner: type, name: str) -> list[int]:
        count = [0]
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            count[0] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)
        return count

    return patch


def write_gguf(path, tensors):
    """A GGUF file at `path` of `tensors`: name -> array (written as it is; bfloat16 as GGUF's
    BF16) or (format name, uint8 blocks of that format)."""
    import gguf
    import ml_dtypes

    from ember.quant import FORMATS

    writer = gguf.GGUFWriter(str(path), "test")
    for name, value in tensors.items():
        if isinstance(value, tuple):
            kind = gguf.GGMLQuantizationType(FORMATS[value[0]].ggml_type)
            writer.add_tensor(name, value[1], raw_dtype=kind)
        elif value.dtype == ml_dtypes.bfloat16:
            writer.add_tensor(name, value.view(np.uint16), raw_dtype=gguf.GGMLQuantizationType.BF16)
        else:
            writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
