"""`ember launch` owns its processes: a SIGTERM or Ctrl-C to the launcher reaches every process
and the launcher exits with 128 + the signal once all are gone (killing one that outlives the
grace period); a failing process is named, and the others stopped; without jax the install
hint is said once. Real processes on this host, each run bounded by LIMIT."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest

LIMIT = 60  # seconds any one launcher may run before the test kills it

WORKER = textwrap.dedent(
    """
    import os, pathlib, signal, sys, time
    folder, mode = pathlib.Path(sys.argv[1]), sys.argv[2]
    rank = int(os.environ["EMBER_PROCESS_ID"])

    def on_signal(number, frame):
        (folder / f"{rank}.signal").write_text(signal.Signals(number).name)
        sys.exit(128 + number)

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN if mode == "ignore" else on_signal)
    # written whole under another name, then renamed: a reader never sees an empty file
    (folder / f"{rank}.pid.part").write_text(str(os.getpid()))
    os.replace(folder / f"{rank}.pid.part", folder / f"{rank}.pid")
    if mode == "rank_1_fails" and rank == 1:
        sys.exit(3)
    time.sleep(LIMIT)
    """
).replace("LIMIT", str(LIMIT))


def start(folder: pathlib.Path, mode: str, grace: float | None = None) -> subprocess.Popen:
    """The launcher, with two processes of WORKER, in a session of its own."""
    worker = folder / "worker.py"
    worker.write_text(WORKER)
    if grace is None:
        command = [sys.executable, "-m", "ember.cli", "launch", "-n", "2"]
    else:  # the library call, for a grace period shorter than the command's
        code = (
            "import sys; from ember.distributed import launch; "
            f"sys.exit(launch(sys.argv[1:], 2, grace={grace}))"
        )
        command = [sys.executable, "-c", code]
    return subprocess.Popen(
        [*command, str(worker), str(folder), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def pids(folder: pathlib.Path) -> list[int]:
    return [int(p.read_text()) for p in sorted(folder.glob("*.pid"))]


def running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def job(folder: pathlib.Path, mode: str, grace: float | None = None):
    """The launcher, once both processes have started; whatever is left is killed after."""
    launcher = start(folder, mode, grace)
    try:
        deadline = time.monotonic() + LIMIT
        while len(pids(folder)) < 2 and launcher.poll() is None:
            assert time.monotonic() < deadline, "the processes did not start"
            time.sleep(0.05)
        yield launcher
    finally:
        for pid in [launcher.pid, *pids(folder)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        launcher.communicate()


def finish(launcher: subprocess.Popen) -> tuple[int, str]:
    try:
        output, _ = launcher.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the launcher did not exit within {LIMIT} s")
    return launcher.returncode, output


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_launcher_stops_every_process(tmp_path, number):
    with job(tmp_path, "cooperate") as launcher:
        os.killpg(launcher.pid, number)  # the launcher's group, as a terminal's Ctrl-C
        code, output = finish(launcher)
        assert code == 128 + number, output
        assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
        for rank in (0, 1):
            assert (tmp_path / f"{rank}.signal").read_text() == number.name
        assert not any(running(pid) for pid in pids(tmp_path))


def test_a_process_that_ignores_the_signal_is_killed_after_the_grace(tmp_path):
    with job(tmp_path, "ignore", grace=0.5) as launcher:
        launcher.send_signal(signal.SIGTERM)
        code, output = finish(launcher)
        assert code == 128 + signal.SIGTERM, output
        assert "killed processes 0, 1, still running after SIGTERM" in output, output
        assert not any(running(pid) for pid in pids(tmp_path))


def test_a_failing_process_is_named_and_the_others_stopped(tmp_path):
    with job(tmp_path, "rank_1_fails", grace=0.5) as launcher:
        code, output = finish(launcher)
        assert code == 3, output
        assert "ember launch: process 1 failed (exit status 3)" in output, output
        assert "ember launch: stopped process 0, still running 0.5 s after process 1" in output
        assert (tmp_path / "0.signal").read_text() == "SIGTERM"
        assert not any(running(pid) for pid in pids(tmp_path))


def test_without_jax_the_install_hint_is_said_once(tmp_path):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['jax'] = None\n")
    script = tmp_path / "job.py"
    script.write_text("import ember.distributed as dist\ndist.initialize()\n")
    path = os.pathsep.join(filter(None, [str(hide), os.environ.get("PYTHONPATH")]))
    run = subprocess.run(
        [sys.executable, "-m", "ember.cli", "launch", "-n", "2", str(script)],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )
    assert run.returncode == 1, run.stderr
    assert run.stderr.count("pip install 'ember[xla]'") == 1, run.stderr
    assert "Traceback" not in run.stderr, run.stderr


def test_processes_end_when_the_launcher_is_killed(tmp_path):
    """SIGKILL cannot be passed on: the processes get SIGTERM from the kernel instead (Linux)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("a parent-death signal is Linux's")
    with job(tmp_path, "cooperate") as launcher:
        launcher.kill()
        deadline = time.monotonic() + LIMIT
        while any(running(pid) for pid in pids(tmp_path)):
            assert time.monotonic() < deadline, "the processes outlived their launcher"
            time.sleep(0.05)
        for rank in (0, 1):
            assert (tmp_path / f"{rank}.signal").read_text() == "SIGTERM"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "argument script: give a script to run"),
        (["{dir}/absent.py"], "argument script: no file at '{dir}/absent.py'"),
        (["python", "{dir}/job.py"], "argument script: no file at 'python' (give the script"),
        (["--num-processes", "1", "{dir}/job.py"], "argument -n: processes 0..1 do not fit a job"),
        (["--first-id", "-1", "{dir}/job.py"], "argument --first-id: must be 0 or more, got -1"),
        (["--coordinator", "localhost", "{dir}/job.py"], "argument --coordinator: expected"),
    ],
)
def test_launch_arguments_are_usage_errors_before_any_process(tmp_path, args, message):
    (tmp_path / "job.py").write_text("raise SystemExit('the job ran')\n")
    filled = [a.format(dir=tmp_path) for a in args]
    run = subprocess.run(
        [sys.executable, "-m", "ember.cli", "launch", "-n", "2", *filled],
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("usage: ember launch"), run.stderr
    assert f"ember launch: error: {message.format(dir=tmp_path)}" in run.stderr, run.stderr
    assert "the job ran" not in run.stderr
