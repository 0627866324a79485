"""The native row-gather kernel against a reference written with Python integers."""

import os
import subprocess
import sys
import textwrap

import ml_dtypes
import numpy as np
import pytest

from ember.engine.backends.native.kernels import gather as gather_module
from ember.engine.backends.native.kernels import launch as launch_module
from ember.engine.backends.native.kernels.compiled import device
from ember.engine.backends.native.kernels.gather import gather_rows
from ember.engine.backends.native.kernels.out_of_range import CLAMP as MODE_CLAMP
from ember.engine.backends.native.kernels.out_of_range import ERROR as MODE_ERROR
from ember.engine.backends.native.kernels.out_of_range import WRAP as MODE_WRAP
from ember.engine.backends.native.kernels.out_of_range import ZERO as MODE_ZERO

MODES = [MODE_ERROR, MODE_ZERO, MODE_CLAMP, MODE_WRAP]
ID_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
TABLE_DTYPES = [
    np.float32,
    np.float16,
    ml_dtypes.bfloat16,
    ml_dtypes.float8_e4m3fn,
    np.int8,
    np.int64,
    np.bool_,
    np.float64,
]


def reference(table, ids, offset, mode):
    """What ``gather_rows`` must write, and the first bad position (-1 if none)."""
    rows = table.shape[0]
    out = np.zeros((len(ids), table.shape[1]), table.dtype)
    for i, x in enumerate(ids.tolist()):
        row = x - offset
        if not 0 <= row < rows:
            if mode == MODE_ZERO:
                continue
            if mode == MODE_CLAMP and rows:
                row = 0 if row < 0 else rows - 1
            elif mode == MODE_WRAP and -rows <= row < 0:
                row += rows
            else:
                return out, i
        out[i] = table[row]
    return out, -1


def random_table(rng, rows, width, dtype):
    """Random bytes of every pattern (NaNs included), so rows compare bytewise."""
    itemsize = np.dtype(dtype).itemsize
    return rng.integers(0, 256, (rows, width * itemsize), np.uint8).view(dtype)


def tricky_ids(rng, dtype, offset, rows, n):
    """Ids around every boundary the kernel tests, as far as ``dtype`` can hold them."""
    info = np.iinfo(dtype)
    near = [offset + k for k in range(-rows - 2, rows + 2)]
    edges = [info.min, info.min + 1, info.max - 1, info.max, 0, -1, rows, -rows, -rows - 1]
    pool = [v for v in near + edges if info.min <= v <= info.max]
    return np.array([pool[k] for k in rng.integers(0, len(pool), n)], dtype=dtype)


def force_streaming(monkeypatch):
    """Stream every output, however small and whatever its row width."""
    monkeypatch.setattr(device, "COPY_STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(device, "COPY_STREAM_MIN_ROW_BYTES", 0)
    monkeypatch.setattr(gather_module, "PARALLEL_STREAM_MIN_BYTES", 0)


def check(table, ids, offset, mode, parallel, out=None):
    expected, expected_bad = reference(table, ids, offset, mode)
    if out is None:
        out = np.full_like(expected, 7)
    bad = gather_rows(table, ids, offset, mode, out, parallel)
    assert bad == expected_bad
    if bad < 0:
        assert out.view(np.uint8).tobytes() == expected.view(np.uint8).tobytes()


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("id_dtype", ID_DTYPES)
def test_every_id_dtype_and_mode(id_dtype, mode, parallel):
    rng = np.random.default_rng(7)
    rows = 19
    info = np.iinfo(id_dtype)
    table = random_table(rng, rows, 5, np.float32)
    offsets = {0, 3, -3, 100, -100, 2**40, -(2**40), info.max, info.min, info.max - 5, 2**70}
    for offset in sorted(offsets):
        for _ in range(4):
            ids = tricky_ids(rng, id_dtype, offset, rows, 41)
            check(table, ids, offset, mode, parallel)
        ids = tricky_ids(rng, id_dtype, offset, rows, 200)
        in_range = ids[(ids.astype(object) >= offset) & (ids.astype(object) < offset + rows)]
        check(table, in_range, offset, mode, parallel)


@pytest.mark.parametrize("width", [1, 3, 7, 8, 16, 33, 64, 100])
@pytest.mark.parametrize("dtype", TABLE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_table_dtype_and_width(dtype, width):
    rng = np.random.default_rng(width)
    table = random_table(rng, 23, width, dtype)
    for mode in MODES:
        for parallel in (False, True):
            check(table, tricky_ids(rng, np.int32, 4, 23, 37), 4, mode, parallel)


def test_uint64_ids_above_int64_max_are_out_of_range():
    table = np.arange(8, dtype=np.float32).reshape(4, 2)
    ids = np.array([1, 2**63, 2**64 - 1, 2**63 - 1], np.uint64)
    out = np.empty((4, 2), np.float32)
    assert gather_rows(table, ids, 0, MODE_ERROR, out) == 1
    assert gather_rows(table, ids, 0, MODE_WRAP, out) == 1
    assert gather_rows(table, ids, 0, MODE_CLAMP, out) == -1
    np.testing.assert_array_equal(out, table[[1, 3, 3, 3]])
    # 2**64 - 1 is not -1: an offset of -1 must not wrap it around to row 0.
    assert gather_rows(table, ids[2:3], -1, MODE_ERROR, out[:1]) == 0


def test_empty_ids_and_empty_table():
    table = np.ones((3, 4), np.float16)
    assert (
        gather_rows(table, np.empty(0, np.int64), 0, MODE_ERROR, np.empty((0, 4), np.float16)) == -1
    )
    empty = np.ones((0, 4), np.float16)
    out = np.ones((2, 4), np.float16)
    ids = np.array([0, -1])
    assert gather_rows(empty, ids, 0, MODE_ZERO, out, True) == -1
    assert not out.any()
    for mode in (MODE_ERROR, MODE_CLAMP, MODE_WRAP):
        assert gather_rows(empty, ids, 0, mode, out) == 0
    narrow = np.ones((3, 0), np.float32)
    assert gather_rows(narrow, ids, 0, MODE_ERROR, np.ones((2, 0), np.float32)) == 1


def test_first_bad_position_across_parallel_chunks():
    rng = np.random.default_rng(3)
    table = random_table(rng, 50, 4, np.float32)
    ids = rng.integers(0, 50, 997)
    out = np.empty((997, 4), np.float32)
    for bad in (996, 500, 3):
        ids[bad] = 50
        for parallel in (False, True):
            assert gather_rows(table, ids, 0, MODE_ERROR, out, parallel) == bad


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("shift", [0, 2, 4, 16, 48])
def test_unaligned_output_buffer(monkeypatch, stream, shift):
    """Views at odd addresses: the streaming path must copy their heads and tails plainly."""
    if stream:
        force_streaming(monkeypatch)
    rng = np.random.default_rng(shift)
    for dtype, width in [(np.float32, 100), (ml_dtypes.bfloat16, 512), (np.float64, 3)]:
        table = random_table(rng, 40, width, dtype)
        ids = tricky_ids(rng, np.int64, 0, 40, 65)
        nbytes = ids.size * table.shape[1] * table.itemsize
        buffer = np.zeros(nbytes + 64, np.uint8)
        out = buffer[shift : shift + nbytes].view(dtype).reshape(ids.size, width)
        for parallel in (False, True):
            check(table, ids, 0, MODE_ZERO, parallel, out)
        assert not buffer[:shift].any() and not buffer[shift + nbytes :].any()


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize(
    ("dtype", "width"), [(np.float32, 64), (np.float32, 4096), (ml_dtypes.bfloat16, 200)]
)
def test_streaming_stores(monkeypatch, dtype, width, parallel):
    force_streaming(monkeypatch)
    rng = np.random.default_rng(width)
    table = random_table(rng, 30, width, dtype)
    for mode in MODES:
        check(table, tricky_ids(rng, np.int32, 0, 30, 33), 0, mode, parallel)


def test_output_big_enough_to_stream():
    rng = np.random.default_rng(0)
    table = random_table(rng, 64, 4096, np.float32)
    n = device.COPY_STREAM_MIN_BYTES // table[0].nbytes + 3
    ids = rng.integers(0, 64, n)
    out = np.empty((n, 4096), np.float32)
    for parallel in (False, True):
        out[:] = 0
        assert gather_rows(table, ids, 0, MODE_ERROR, out, parallel) == -1
        assert np.array_equal(out.view(np.uint32), table.view(np.uint32)[ids])


@pytest.mark.skipif(not device.HAVE_STREAM, reason="streaming stores are x86-64 only")
def test_parallel_gathers_stream_only_outputs_too_big_to_stay_cached(monkeypatch):
    """Below `PARALLEL_STREAM_MIN_BYTES` two threads store plainly (cached rows were copied in
    less than half the time), one thread streams from `device.COPY_STREAM_MIN_BYTES`; the
    rows are the same either way."""
    seen = []

    def spy(kernel, stream_at):
        def run(*args):
            seen.append(args[stream_at])
            return kernel(*args)

        return run

    monkeypatch.setattr(gather_module, "gather_serial", spy(gather_module.gather_serial, 5))
    monkeypatch.setattr(gather_module, "gather_parallel", spy(gather_module.gather_parallel, 5))
    monkeypatch.setattr(launch_module, "GATE", launch_module.LoadGate(64, runnable=lambda: 1))
    rng = np.random.default_rng(0)
    table = random_table(rng, 300, 4096, np.float32)
    for nbytes, parallel, streams in [
        (4 << 20, True, False),
        (4 << 20, False, True),
        (gather_module.PARALLEL_STREAM_MIN_BYTES, True, True),
    ]:
        ids = rng.integers(0, 300, nbytes // table[0].nbytes)
        out = np.zeros((ids.size, 4096), np.float32)
        assert gather_rows(table, ids, 0, MODE_ERROR, out, parallel) == -1
        assert seen.pop() is streams
        assert out.view(np.uint32).tobytes() == table.view(np.uint32)[ids].tobytes()


def test_rejects_bad_arguments():
    table = np.ones((4, 2), np.float32)
    out = np.empty((2, 2), np.float32)
    ids = np.array([0, 1])
    with pytest.raises(TypeError, match="integer"):
        gather_rows(table, ids.astype(np.float32), 0, MODE_ERROR, out)
    with pytest.raises(TypeError, match="dtype"):
        gather_rows(table, ids, 0, MODE_ERROR, out.astype(np.float64))
    with pytest.raises(ValueError, match="shape"):
        gather_rows(table, ids, 0, MODE_ERROR, np.empty((3, 2), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        gather_rows(table.T, ids, 0, MODE_ERROR, out)
    with pytest.raises(ValueError, match="mode"):
        gather_rows(table, ids, 0, 9, out)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        gather_rows(table, ids, 0, MODE_ERROR, out)


def test_strided_and_byte_swapped_ids():
    table = np.arange(20, dtype=np.int64).reshape(10, 2)
    ids = np.arange(10, dtype=">i4")[::-3]
    out = np.empty((ids.size, 2), np.int64)
    assert gather_rows(table, ids, 0, MODE_ERROR, out) == -1
    np.testing.assert_array_equal(out, table[ids])


@pytest.mark.parametrize(
    ("cpu", "features", "lanes"),
    [("generic", "", 2), ("haswell", "+sse2,+avx,+avx2", 4)],
)
def test_streaming_without_avx512(tmp_path, cpu, features, lanes):
    """Compiled for an older x86 CPU, the streaming path splits each 64 bytes into more stores."""
    if not device.HAVE_STREAM:
        pytest.skip("streaming stores are x86-64 only")
    script = textwrap.dedent(
        f"""
        import numpy as np
        from ember.engine.backends.native.kernels import gather
        from ember.engine.backends.native.kernels.compiled import device
        assert device._LANES == {lanes}, device._LANES
        device.COPY_STREAM_MIN_BYTES = device.COPY_STREAM_MIN_ROW_BYTES = 0
        rng = np.random.default_rng(0)
        table = rng.random((30, 100), np.float32)
        ids = rng.integers(0, 30, 50)
        out = np.empty((50, 100), np.float32)
        assert gather.gather_rows(table, ids, 0, 0, out) == -1
        assert np.array_equal(out, table[ids])
        """
    )
    env = dict(
        os.environ,
        NUMBA_CPU_NAME=cpu,
        NUMBA_CPU_FEATURES=features,
        NUMBA_CACHE_DIR=str(tmp_path),
    )
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
