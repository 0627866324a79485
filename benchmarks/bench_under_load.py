"""Lookups from 512 KiB up while other work shares the machine: does the parallel kernel stall?

A parallel lookup wakes numba's worker threads; when every core is busy, a woken worker may
wait a scheduler slice (milliseconds) for one, and the lookup with it. ember's launch then runs
the single-thread kernel (`kernels/launch.py`). Three contenders execute float32 lookups turn
about: a session with numba's default thread count; the same with that check off (parallel
whenever no other thread's parallel kernel runs, as before it); one with ``num_threads=1``
 (128 and 1024 ids of 4 KiB rows: 512 KiB and 4 MiB) for ``--seconds`` under each
load; p50 and p99 of single calls are reported. Loads:

- ``none``: nothing started by the benchmark (the machine may still be busy: see loadavg);
- ``spin``: two processes each in a Python busy loop;
- ``numba``: a process running a two-thread numba parallel job in a loop, its workers waking
  and sleeping as another server's would;
- ``pytest``: ``python -m pytest -q <--pytest path>`` run again and again (``--pytest``).

    python benchmarks/bench_under_load.py --loads none spin numba
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

os.environ.setdefault("EMBER_COMPILE", "sync")

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.engine.backends.native.kernels import launch
from ember.graph import Graph, TensorType

ROOT = Path(__file__).resolve().parents[1]

SPIN = "while True: pass"

NUMBA_JOB = """
import time
import numpy as np
from numba import njit, prange

@njit(parallel=True)
def work(a):
    s = 0.0
    for i in prange(a.size):
        s += np.sqrt(a[i])
    return s

a = np.ones(200_000)
while True:
    work(a)
    time.sleep(0.0005)
"""


def loads(pytest_path: str | None) -> dict[str, list[list[str]]]:
    """Each load's processes, as argv lists."""
    python = sys.executable
    named = {
        "none": [],
        "spin": [[python, "-c", SPIN]] * 2,
        "numba": [[python, "-c", NUMBA_JOB]],
    }
    if pytest_path:
        loop = (
            "import subprocess, sys\nwhile True:\n"
            f"    subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', "
            f"{pytest_path!r}], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        )
        named["pytest"] = [[python, "-c", loop]]
    return named


@contextmanager
def running(argvs: list[list[str]], settle: float):
    """The load's processes, started, left `settle` seconds to get going, then stopped."""
    procs = [subprocess.Popen(a, cwd=ROOT, start_new_session=True) for a in argvs]
    try:
        time.sleep(settle if procs else 0)
        yield
    finally:
        for proc in procs:
            os.killpg(proc.pid, 15)
        for proc in procs:
            proc.wait()


def lookup_model(session: InferenceSession, table: np.ndarray):
    vocab, hidden = table.shape
    layer = nn.EmbeddingV2(vocab, hidden, DType.float32, name="t")
    with Graph("lookup", input_types=[TensorType(DType.int32, ["n"])]) as g:
        g.output(layer(g.inputs[0]))
    return session.load(g, {"t": table})


def without_load_check(model):
    """An execute that launches parallel kernels whatever the machine's load."""
    always = launch.LoadGate(os.cpu_count() or 1, runnable=lambda: None)

    def execute(ids, out):
        gate, launch.GATE = launch.GATE, always
        try:
            return model.execute(ids, out=out)
        finally:
            launch.GATE = gate

    return execute


def sample(models: dict, tokens: int, vocab: int, seconds: float) -> dict[str, np.ndarray]:
    """Seconds per call of each model, taking turns call by call, each with its own out= and
    fresh random ids (rows another call left in the cache would flatter the second)."""
    rng = np.random.default_rng(tokens)
    first = rng.integers(0, vocab, tokens).astype(np.int32)
    outs = {name: m(first, None)[0].to_numpy().copy() for name, m in models.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    end = time.perf_counter() + seconds
    order = list(models.items())
    while time.perf_counter() < end:
        order = order[1:] + order[:1]  # no model always follows the same other
        for name, m in order:
            out = outs[name]
            batch = rng.integers(0, vocab, tokens).astype(np.int32)
            time.sleep(2e-4)  # a server's gap between requests: the workers go back to sleep
            start = time.perf_counter()
            m(batch, [out])
            times[name].append(time.perf_counter() - start)
    return {name: np.array(v) for name, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--loads", nargs="+", default=["none", "spin", "numba"])
    p.add_argument("--pytest", help="a test path run again and again as the 'pytest' load")
    p.add_argument("--tokens", type=int, nargs="+", default=[128, 1024])
    p.add_argument("--vocab", type=int, default=32768)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--settle", type=float, default=2.0)
    args = p.parse_args(argv)
    table = np.random.default_rng(0).standard_normal((args.vocab, args.hidden), np.float32)
    default = lookup_model(InferenceSession(), table)
    single = lookup_model(InferenceSession(num_threads=1), table)
    models = {
        "default threads": lambda ids, out: default.execute(ids, out=out),
        "default, no load check": without_load_check(default),
        "1 thread": lambda ids, out: single.execute(ids, out=out),
    }
    rng = np.random.default_rng(1)
    commands = loads(args.pytest)
    print(f"{args.vocab} x {args.hidden} float32, {os.cpu_count()} cores; shared machine")
    print("| load | ids (output) | threads | p50 | p99 | calls | loadavg 1 min |")
    print("|---|---|---|---:|---:|---:|---:|")
    for load in args.loads:
        with running(commands[load], args.settle):
            for n in args.tokens:
                ids = rng.integers(0, args.vocab, n).astype(np.int32)
                for m in models.values():  # warm, and check the rows
                    assert np.array_equal(m(ids, None)[0].to_numpy(), table[ids])
                times = sample(models, n, args.vocab, args.seconds)
                size = f"{n} ({n * args.hidden * 4 / 2**20:g} MiB)"
                for name, t in times.items():
                    p50, p99 = np.percentile(t, [50, 99]) * 1e6
                    print(
                        f"| {load} | {size} | {name} | {p50:.0f} µs | {p99:.0f} µs | "
                        f"{t.size} | {os.getloadavg()[0]:.1f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
