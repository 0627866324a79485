"""The coordination service's output is read for as long as it runs: a service that writes
more than a pipe holds (a long job's log) must go on serving, not block on a full pipe."""

from __future__ import annotations

import pathlib
import subprocess
import time

import pytest

from ember.distributed import service

CHATTY_SERVICE = r"""
import pathlib, sys
print("ready", flush=True)
line = "x" * 99 + "\n"
for _ in range(4000):  # 400 kB on each stream, several pipe buffers
    sys.stdout.write(line)
    sys.stderr.write(line)
sys.stdout.flush()
sys.stderr.flush()
pathlib.Path(sys.argv[1]).write_text("still serving")
sys.stdin.read()
"""


def test_a_service_that_writes_more_than_a_pipe_holds_keeps_serving(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
):
    marker = tmp_path / "serving"
    monkeypatch.setattr(service, "_SERVICE", CHATTY_SERVICE)
    process = service.start_service(str(marker), 1, 1, 1)  # type: ignore[arg-type]
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the service blocked writing its output"
    finally:
        process.stdin.close()  # type: ignore[union-attr]
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # still blocked: leave nothing behind
            process.kill()
            process.wait()
    forwarded = 0
    deadline = time.monotonic() + 30
    while forwarded < 8000 and time.monotonic() < deadline:  # the last lines on their way
        forwarded += capfd.readouterr().err.count("x" * 99)
        time.sleep(0.05)
    assert forwarded == 8000, "the service's output did not reach stderr"


def test_a_service_that_cannot_start_says_why(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(service, "_SERVICE", "import sys; sys.exit('port 1 is taken')")
    with pytest.raises(RuntimeError, match="on port 1 did not start: port 1 is taken"):
        service.start_service(1, 1, 1, 1)
