"""Large weights move into 2 MiB pages at load (on Linux kernels that can collapse pages), with
their contents unchanged; ``EMBER_HUGE_PAGES=0`` leaves them where they are."""

import ctypes
import ctypes.util
import mmap
import sys

import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession, wait_for_kernels
from ember.engine.backends.native import huge_pages
from ember.graph import Graph, TensorType

ROWS, WIDTH = 65_536, 128  # 32 MiB of float32
PRIVATE = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS  # as malloc maps memory (MAP_SHARED is shmem)


def anon_huge_bytes(array: np.ndarray) -> int:
    """Bytes of `array`'s memory mappings held in anonymous huge pages (from /proc/self/smaps)."""
    start, end = array.ctypes.data, array.ctypes.data + array.nbytes
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                low, high = (int(x, 16) for x in head.split("-"))
                inside = low < end and high > start
            elif inside and head == "AnonHugePages:":
                total += int(line.split()[1]) * 1024
    return total


def small_pages_table() -> np.ndarray:
    """A float32 table in anonymous memory held in 4 KiB pages, whatever the system's default."""
    mapping = mmap.mmap(-1, ROWS * WIDTH * 4, flags=PRIVATE)
    mapping.madvise(mmap.MADV_NOHUGEPAGE)
    table = np.frombuffer(mapping, np.float32).reshape(ROWS, WIDTH)
    table[:] = np.random.default_rng(0).standard_normal((ROWS, WIDTH), dtype=np.float32)
    return table


def kernel_collapses_pages() -> bool:
    """Whether this kernel moves a range into huge pages on request (Linux 6.1, THP not off)."""
    if sys.platform != "linux":
        return False
    mapping = mmap.mmap(-1, 2 * huge_pages.PAGE_BYTES, flags=PRIVATE)
    scratch = np.frombuffer(mapping, np.uint8)
    scratch[:] = 1
    madvise = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    start = -(-scratch.ctypes.data // huge_pages.PAGE_BYTES) * huge_pages.PAGE_BYTES
    collapsed = madvise(start, huge_pages.PAGE_BYTES, 25) == 0  # MADV_COLLAPSE
    del scratch
    mapping.close()
    return collapsed


needs_collapse = pytest.mark.skipif(
    not kernel_collapses_pages(),
    reason="this kernel cannot move pages into huge pages (MADV_COLLAPSE: Linux 6.1, THP on)",
)


def lookup_model(table: np.ndarray):
    embedding = nn.EmbeddingV2(table.shape[0], table.shape[1], DType.float32, name="t")
    with Graph("lookup", input_types=[TensorType(DType.int64, ["n"])]) as graph:
        graph.output(embedding(graph.inputs[0]))
    return InferenceSession().load(graph, {"t": table})


@needs_collapse
def test_a_large_table_moves_into_huge_pages_with_its_values_kept():
    table = small_pages_table()
    before = table.copy()
    assert anon_huge_bytes(table) == 0
    model = lookup_model(table)
    assert wait_for_kernels(timeout=60)
    assert anon_huge_bytes(table) >= table.nbytes - 2 * huge_pages.PAGE_BYTES
    np.testing.assert_array_equal(table, before)
    ids = np.random.default_rng(1).integers(0, ROWS, 1000)
    np.testing.assert_array_equal(model.execute(ids)[0].to_numpy(), before[ids])


@needs_collapse
def test_turned_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("EMBER_HUGE_PAGES", "0")
    table = small_pages_table()
    lookup_model(table)
    assert wait_for_kernels(timeout=60)
    assert anon_huge_bytes(table) == 0


@needs_collapse
def test_tables_under_the_threshold_are_left_alone():
    table = small_pages_table()[: huge_pages.MIN_BYTES // (WIDTH * 4) - 1]
    lookup_model(table)
    assert wait_for_kernels(timeout=60)
    assert anon_huge_bytes(table) == 0


def test_a_bad_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("EMBER_HUGE_PAGES", "yes")
    with pytest.raises(ValueError, match="EMBER_HUGE_PAGES must be 0 or 1, got 'yes'"):
        lookup_model(np.zeros((4, 4), np.float32))
