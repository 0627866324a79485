"""Two processes on loopback, two CPU devices each, serving four shards of one table: results
equal numpy, a bad id raises in every process, each process holds about its shards, and a
peer that dies or never joins is an error within the timeout, never a hang."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("jax")

from ember.distributed.launch import free_port
from ember.quant import get_format

WORKER = pathlib.Path(__file__).with_name("worker.py")
LIMIT = 240  # seconds any one job may take before it is killed


def run(command: list[str], env: dict | None = None) -> tuple[int, str, float]:
    """Run in a session of its own, killed whole (with whatever it started) at LIMIT."""
    start = time.monotonic()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{command} did not finish within {LIMIT} s:\n{output}")
    return process.returncode, output, time.monotonic() - start


def launch(scenario: str, folder: pathlib.Path, **env: str) -> tuple[int, str]:
    command = [sys.executable, "-m", "ember.cli", "launch", "-n", "2", str(WORKER), scenario]
    code, output, _ = run([*command, str(folder)], env)
    return code, output


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("tables")
    rng = np.random.default_rng(0)
    np.save(folder / "dense.npy", rng.standard_normal((1001, 64), dtype=np.float32))
    values = rng.standard_normal((1001, 256)).astype(np.float32)
    np.save(folder / "q4k.npy", get_format("q4_k").quantize(values))
    ties = rng.integers(-2, 3, (1001, 64)).astype(np.float32)  # exact logits
    ties[[250, 251, 999]] = ties[7]  # equal to row 7, on other devices
    np.save(folder / "ties.npy", ties)
    return folder


def test_two_processes_give_the_unsharded_lookup(tables):
    code, output = launch("lookups", tables)
    assert code == 0 and "FAIL" not in output, output
    checks = ("float32 int32: equal numpy", "float32 int64: equal numpy", "q4_k: equal", "scatter")
    for check in checks:
        assert output.count(f"ok {check}") == 2, output
    assert output.count("ok bad id raises") == 2, output


def test_two_processes_give_the_unsharded_tied_head(tables):
    """Lookup then head, four shards over two processes: every mode equals the unsharded
    head, and the devices exchange candidates (k x 8 bytes per token and device), not logits."""
    code, output = launch("head", tables)
    assert code == 0 and "FAIL" not in output, output
    assert output.count("ok head:") == 2 * 6, output


def test_two_processes_give_the_unsharded_bag_collection(tables):
    """Three tables split by rows over four devices of two processes, one whole on the last:
    every device's result equals the unsharded collection (max and the whole table bit for
    bit), and one partial vector per bag and device is exchanged, never rows."""
    code, output = launch("bags", tables)
    assert code == 0 and "FAIL" not in output, output
    assert output.count("ok bags:") == 2 * 5, output


def test_each_process_holds_about_its_shards(tmp_path):
    table = np.lib.format.open_memmap(tmp_path / "big.npy", "w+", np.float32, (250_000, 1024))
    table[::997] = 1.0  # the rows the workers read; the rest stays a sparse hole
    table.flush()
    del table
    code, output = launch("rss", tmp_path)
    assert code == 0 and output.count("ok rss grows by about the shards") == 2, output


@pytest.mark.parametrize("timeout", ["5"])
def test_a_peer_that_dies_is_an_error_within_the_timeout(tables, timeout):
    code, output = launch("peer_dies", tables, WORKER_TIMEOUT=timeout)
    assert "ok a dead peer is an error within the timeout" in output, output
    assert code == 0, output


def test_a_peer_that_never_joins_is_a_timeout_error():
    script = (
        "import ember.distributed as d\n"
        f"try:\n    d.initialize('127.0.0.1:{free_port()}', 2, 0, timeout=3)\n"
        "except TimeoutError as e:\n    print('timeout:', e)\n"
    )
    code, output, seconds = run([sys.executable, "-c", script])
    assert code == 0 and "timeout: ember.distributed: not all 2 processes joined" in output, output
    assert seconds < 30, output


def test_the_example_runs_as_written(tmp_path):
    example = pathlib.Path(__file__).parents[2] / "examples" / "vocab_parallel.py"
    command = [sys.executable, "-m", "ember.cli", "launch", "-n", "2", str(example)]
    code, output, _ = run([*command, "--table", str(tmp_path / "table.npy")])
    assert code == 0, output
    assert output.count("equal to the unsharded lookup: True") == 2, output
