"""How long a fresh process takes to get its first embedding rows out of ember.

Each measurement is a new Python process that imports ember, builds an embedding graph, loads
it (``InferenceSession().load``, which compiles the gather kernels or reads them from numba's
on-disk cache) and executes it once on a few ids. "cold" runs with an empty ``NUMBA_CACHE_DIR``,
so every kernel is compiled; "warm" runs again with the directory the cold run filled, as a
second start of the same program would. Python's own bytecode cache and the OS file cache are
warm in both.

    python benchmarks/bench_load.py --runs 3

The float32 table is ``np.empty`` and the Q4_K table zeros: loading does not read the rows, and
the first execute reads only the few it looks up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

LLAMA3 = (128256, 4096)
FORMATS = ("float32", "q4_k")
FIRST_IDS = 8
Q4_K_BLOCK = (256, 144)  # values per block, bytes per block


def make_table(fmt: str, rows: int, hidden: int) -> np.ndarray:
    """The table a graph of ``fmt`` binds: float32 values, or Q4_K blocks as uint8 rows."""
    if fmt == "float32":
        return np.empty((rows, hidden), np.float32)
    values, nbytes = Q4_K_BLOCK
    if hidden % values:
        raise ValueError(f"q4_k needs a hidden size that is a multiple of {values}, got {hidden}")
    return np.zeros((rows, hidden // values * nbytes), np.uint8)


def child(fmt: str, rows: int, hidden: int) -> None:
    """One fresh-process measurement; prints ``@@ {json}`` with the seconds of each step."""
    start = time.perf_counter()
    import ember.nn as enn
    from ember.dtype import DType
    from ember.engine import InferenceSession, wait_for_kernels
    from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType

    imported = time.perf_counter()
    table = make_table(fmt, rows, hidden)
    building = time.perf_counter()
    emb = enn.EmbeddingV2(
        vocab_size=rows,
        hidden_dim=table.shape[1],  # a quantized table's row bytes, as MAX declares it
        dtype=DType.float32 if fmt == "float32" else DType.uint8,
        device=DeviceRef.CPU(),
        quantization_encoding=None if fmt == "float32" else QuantizationEncoding[fmt.upper()],
        name="tok",
    )
    with Graph("embed", input_types=[TensorType(DType.int32, ["n"], DeviceRef.CPU())]) as g:
        g.output(emb(g.inputs[0]))
    built = time.perf_counter()
    ids = (np.arange(FIRST_IDS, dtype=np.int32) * 7919) % rows
    loading = time.perf_counter()
    model = InferenceSession().load(g, weights_registry={"tok": table})
    loaded = time.perf_counter()
    out = model.execute(ids)[0]
    executed = time.perf_counter()
    wait_for_kernels()
    ready = time.perf_counter()
    if out.shape != (FIRST_IDS, hidden):
        raise SystemExit(f"first execute gave shape {out.shape}")
    times = {
        "import_s": imported - start,
        "build_s": built - building,
        "load_s": loaded - loading,
        "execute_s": executed - loaded,
        "ready_s": ready - loading,
    }
    print("@@ " + json.dumps(times), flush=True)


def run_child(fmt: str, rows: int, hidden: int, cache_dir: str, compile_mode: str = "") -> dict:
    """Runs ``child`` in a new process with ``cache_dir`` as numba's cache and ember's default
    way of compiling (or ``EMBER_COMPILE=compile_mode``); adds ``wall_s``, which includes the
    exit (it waits for a kernel still compiling).

    Raises:
        RuntimeError: the child failed (with the last line it wrote to stderr).
    """
    env = {k: v for k, v in os.environ.items() if k != "EMBER_COMPILE"}
    env["NUMBA_CACHE_DIR"] = cache_dir
    if compile_mode:
        env["EMBER_COMPILE"] = compile_mode
    command = [sys.executable, os.path.abspath(__file__), "--child", fmt, str(rows), str(hidden)]
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    replies = [x for x in proc.stdout.splitlines() if x.startswith("@@ ")]
    if proc.returncode or not replies:
        lines = [x for x in proc.stderr.splitlines() if x.strip()]
        raise RuntimeError(f"exit {proc.returncode}: {lines[-1] if lines else ''}")
    return json.loads(replies[-1][3:]) | {"wall_s": wall}


def cold_and_warm(
    fmt: str, rows: int, hidden: int, runs: int, compile_mode: str = ""
) -> dict[str, dict[str, float]]:
    """Median seconds of each step over ``runs`` cold starts (each with a fresh, empty cache
    directory) and the warm start that follows each, by "cold" / "warm"."""
    samples: dict[str, list[dict]] = {"cold": [], "warm": []}
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
            samples["cold"].append(run_child(fmt, rows, hidden, cache, compile_mode))
            samples["warm"].append(run_child(fmt, rows, hidden, cache, compile_mode))
    return {
        label: {key: float(np.median([s[key] for s in runs_])) for key in runs_[0]}
        for label, runs_ in samples.items()
    }


def summary_lines(rows: int = LLAMA3[0], hidden: int = LLAMA3[1], runs: int = 1) -> list[str]:
    """One line per format and cache state, in the style of bench_embedding's load lines."""
    lines = []
    for fmt in FORMATS:
        try:
            result = cold_and_warm(fmt, rows, hidden, runs)
        except RuntimeError as exc:
            lines.append(f"ember load ({fmt}), fresh process: failed ({exc})")
            continue
        for label, r in result.items():
            lines.append(
                f"ember load ({fmt}), fresh process, {label} cache: load {r['load_s']:.2f} s "
                f"(import {r['import_s']:.2f} s, first execute {r['execute_s'] * 1e3:.1f} ms, "
                f"kernels ready {r['ready_s']:.2f} s after load began, "
                f"process wall {r['wall_s']:.1f} s)"
            )
    return lines


def table(results: list[tuple[str, str, str, dict[str, float]]], runs: int) -> str:
    """A plain-text table of the medians, one line per size, format and cache state."""
    header = (
        f"{'table':>13} {'format':>7} {'cache':>5} {'import s':>9} {'build s':>8} "
        f"{'load s':>7} {'1st exec ms':>11} {'ready s':>7} {'wall s':>7}"
    )
    lines = [f"medians of {runs} fresh processes each", header, "-" * len(header)]
    for size, fmt, label, r in results:
        lines.append(
            f"{size:>13} {fmt:>7} {label:>5} {r['import_s']:>9.2f} {r['build_s']:>8.3f} "
            f"{r['load_s']:>7.2f} {r['execute_s'] * 1e3:>11.1f} {r['ready_s']:>7.2f} "
            f"{r['wall_s']:>7.1f}"
        )
    return "\n".join(lines)


def size(text: str) -> tuple[int, int]:
    """``ROWSxHIDDEN`` as two ints."""
    rows, hidden = text.lower().split("x")
    return int(rows), int(hidden)


def main(argv: list[str] | None = None) -> None:
    """Prints the table of cold and warm starts for each table size and format."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, help="fresh processes per cell (median)")
    p.add_argument("--small", type=size, default=(1024, 256), help="ROWSxHIDDEN, default 1024x256")
    p.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    p.add_argument(
        "--compile", default="", metavar="MODE", help="EMBER_COMPILE for the children (sync, ...)"
    )
    p.add_argument("--no-llama", action="store_true", help="skip the 128256x4096 table")
    p.add_argument("--child", nargs=3, metavar=("FMT", "ROWS", "HIDDEN"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        fmt, rows, hidden = args.child
        child(fmt, int(rows), int(hidden))
        return
    sizes = [args.small] + ([] if args.no_llama else [LLAMA3])
    results = []
    for rows, hidden in sizes:
        for fmt in args.formats:
            for label, r in cold_and_warm(fmt, rows, hidden, args.runs, args.compile).items():
                results.append((f"{rows}x{hidden}", fmt, label, r))
            print(f"  done {fmt} {rows}x{hidden}", flush=True)
    print(table(results, args.runs))
    print(
        "load: InferenceSession().load; 1st exec: the first execute of 8 ids, after the load;\n"
        "ready: from the start of load until every kernel it asked for is compiled (lookups\n"
        "run through numpy until then where ember compiles in the background); wall: the\n"
        "whole child process, exit included"
    )


if __name__ == "__main__":
    main()
