"""Embedding lookups side by side: ember against numpy, torch and MAX, and the copy roofline.

Every contender gathers rows of one 128256 x 4096 table (the Llama-3 vocabulary) for the same
random int32 ids (a pool of id sets, a fresh set each call; with ``--ids repeated``, the same set
every call, whose rows stay in the cache, as a decode loop's repeated tokens or a warm loop's).
Contenders (``contenders/``) take turns round-robin in ``harness.py`` (A, B, C, A, B, C, ...)
and the median seconds per call is reported (``report.py``), next to the machine's two-thread
copy bandwidth. MAX is a peer measured here, never a dependency; its quantized lookups run in
a child process (``contenders/max_worker.py``), so a crash becomes a table row instead of
ending the run.

    python benchmarks/bench_embedding.py --tokens 1 64 8192 --dtypes float32 --quant q4_k q4_0
    python benchmarks/bench_embedding.py --tokens 1 64 512 --dtypes float32 bfloat16 \
        --ids fresh repeated    # small calls, beside torch, torch's ids given to ember too

torch, where installed, is loaded before numba's first parallel kernel (`load_torch_first`).

Quantized tables: 2048 random normal rows, quantized by ``gguf.quants.quantize`` where it can
(the legacy formats) and by ``ember.quant`` otherwise (the K formats, which gguf cannot
quantize), tiled over the vocabulary. Results are checked bit-exact against
``gguf.quants.dequantize`` on up to 256 sampled rows.

Load times: MAX's and ember's float32 (and ember's Q4_K) graph loaded in fresh processes, with
an empty compile cache and then a warm one (``benchmarks/bench_load.py`` for ember's).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import resource
import tempfile

import ml_dtypes
import numpy as np
from contenders.contender import Contender, build
from contenders.ember_lookup import ember_contender, ember_out_contender, ember_torch_ids_contender
from contenders.max_peer import max_contender
from contenders.max_worker import MaxWorker, max_load_times
from contenders.numpy_peer import numpy_contender
from contenders.torch_peer import torch_contenders
from embedding_tables import (
    HIDDEN,
    QUANT_FORMATS,
    THREADS,
    VOCAB,
    check_quant,
    id_pool,
    quant_table,
    random_table,
    row_bytes,
    same_bytes,
)
from harness import (
    Slot,
    add_save_option,
    first_line,
    machine_note,
    recorded,
    round_robin,
    timed_slot,
    versions,
)
from report import Row, plot, report, torch_ratios
from roofline import copy_roofline

# Timed calls run ember's compiled kernels: where ember compiles in the background, lookups go
# through numpy until their kernel is ready, which belongs to load time (see bench_load.py).
os.environ.setdefault("EMBER_COMPILE", "sync")


def ember_load_times() -> list[str]:
    """ember's load of the float32 and Q4_K graphs in fresh processes, empty numba cache then
    warm, to set beside MAX's (bench_load.py runs the children, and a table over more runs)."""
    from bench_load import summary_lines  # a sibling script: benchmarks/ is sys.path[0]

    return summary_lines(VOCAB, HIDDEN, runs=1)


def measure_group(
    contenders: list[Contender],
    n: int,
    budget: float,
    min_rounds: int,
    remote: dict[str, MaxWorker] | None = None,
    ids: str = "fresh",
) -> tuple[dict[str, float | None], dict[str, str]]:
    """Checks each contender on ``n`` ids once, then times those that ran, round-robin.

    Returns medians by name and notes by name (why it failed, or what came out wrong).
    """
    slots: dict[str, Slot] = {}
    notes: dict[str, str] = {}
    pool = id_pool(n, ids)
    for c in contenders:
        try:
            call = c.bind(pool)
            out = call()
            notes[c.name] = c.check(pool[0], c.to_numpy(out))
            del out
            slots[c.name] = timed_slot(call)
        except Exception as exc:
            notes[c.name] = first_line(exc)
    for name, worker in (remote or {}).items():
        reply = worker.request(op="check", n=n)
        notes[name] = worker.died or reply["note"]
        if not worker.died:
            slots[name] = Slot(
                lambda w=worker: w.request(op="time").get("t", float("nan")), reply["cost"]
            )
    medians: dict[str, float | None] = dict(round_robin(slots, budget, min_rounds))
    for name, worker in (remote or {}).items():
        if worker.died and name in medians:
            notes[name], medians[name] = worker.died, None
    return medians, notes


def run_dense(args, dtype: str, table: np.ndarray, roofline: list[float], loads: list[str]):
    """Rows for one dense dtype over every token count."""

    def exact(ids, out):
        return "" if same_bytes(out, np.take(table, ids, axis=0)) else "WRONG VALUES"

    makers = {"numpy": lambda: [numpy_contender(table)], "torch": lambda: torch_contenders(table)}
    if args.max:
        makers["MAX"] = lambda: [max_contender(table, loads)]
    makers["ember"] = lambda: [ember_contender(table, "ember"), ember_out_contender(table)]
    makers["torch ids"] = lambda: [ember_torch_ids_contender(table)]
    contenders, failed = build(makers)
    for c in contenders:
        c.check = exact
    rows = []
    for ids, n in itertools.product(args.ids, args.tokens):
        medians, notes = measure_group(contenders, n, args.budget, args.min_rounds, ids=ids)
        notes |= failed
        roofline += copy_roofline(2)
        nbytes = n * HIDDEN * table.itemsize
        for name in [c.name for c in contenders] + list(failed):
            rows.append(
                Row(n, dtype, name, medians.get(name), nbytes, 2 * nbytes, notes[name], ids)
            )
        print(f"  done {dtype} x {n} tokens, {ids} ids", flush=True)
    return rows


def run_quant(args, fmt: str, dense32, roofline: list[float], loads: list[str]):
    """Rows for one quantized format: ember, MAX (in a child process), ember's float32 lookup.

    ``dense32`` is the float32 table, or None when ember is not installed.
    """
    table = quant_table(fmt)
    makers = {f"ember {fmt}": lambda: [ember_contender(table, f"ember {fmt}", fmt)]}
    if dense32 is not None:
        makers["ember float32"] = lambda: [ember_contender(dense32, "ember float32")]
    contenders, failed = build(makers)
    for c in contenders:
        if c.name == "ember float32":
            c.check = lambda ids, out: (
                "" if same_bytes(out, np.take(dense32, ids, axis=0)) else "WRONG VALUES"
            )
        else:
            c.check = lambda ids, out: check_quant(out, table, ids, fmt)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{fmt}.npy")
        np.save(path, table)
        worker = MaxWorker(fmt, path) if args.max else None
        if worker is not None and not worker.died:
            loads.append(f"MAX load ({fmt}, child process): {worker.hello['load_s']:.2f} s")
        for n in args.tokens:
            if worker is not None and worker.died and "load_s" in worker.hello:
                worker.close()
                worker = MaxWorker(fmt, path)  # the last count crashed it; try this one afresh
            remote = {f"MAX {fmt}": worker} if worker is not None else None
            medians, notes = measure_group(contenders, n, args.budget, args.min_rounds, remote)
            notes |= failed
            roofline += copy_roofline(2)
            out_bytes = n * HIDDEN * 4
            for name in [c.name for c in contenders] + list(remote or {}) + list(failed):
                read = n * (HIDDEN * 4 if name == "ember float32" else row_bytes(fmt))
                rows.append(
                    Row(n, fmt, name, medians.get(name), out_bytes, out_bytes + read, notes[name])
                )
            print(f"  done {fmt} x {n} tokens", flush=True)
        if worker is not None:
            worker.close()
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, nargs="+", default=[1, 64, 512, 8192, 32768])
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    p.add_argument("--quant", nargs="+", default=[], choices=QUANT_FORMATS)
    p.add_argument(
        "--ids",
        nargs="+",
        default=["fresh"],
        choices=["fresh", "repeated"],
        help="dense tables: a fresh id set per call, and/or the same set again (rows cached)",
    )
    p.add_argument("--png", help="draw GB/s against tokens per call into this file")
    p.add_argument("--quick", action="store_true", help="fewer, shorter rounds (noisier)")
    p.add_argument(
        "--no-load-gate",
        action="store_true",
        help="let ember's parallel kernels run even when other tasks hold the cores (torch's "
        "threads never step aside; ember's launch gate runs one thread then)",
    )
    add_save_option(p, "bench_embedding")
    args = p.parse_args(argv)
    args.budget, args.min_rounds = (0.3, 3) if args.quick else (2.0, 7)
    return args


def main(argv: list[str] | None = None) -> None:
    """Runs the benchmark and prints the report (and saves it, with ``--save``)."""
    args = parse_args(argv)
    with recorded(args.save):
        run(args)


def load_torch_first() -> str:
    """Loads torch, where installed, before numba's first parallel kernel, as a torch user's
    process does; says which OpenMP runtimes the process then holds.

    numba's OpenMP layer and torch both need ``libgomp.so.1``: loaded first, numba's makes the
    system's libgomp torch's too (one runtime for both, found by its name), and in that order
    torch's two-thread calls took milliseconds at the median when in turns with ember's; torch
    first, each keeps its own runtime, as in a process that imported torch before ember ran.
    """
    try:
        import torch  # noqa: F401
    except ImportError:
        return "torch not installed"
    try:
        with open("/proc/self/maps") as maps:
            found = {line.split()[-1] for line in maps if "libgomp" in line}
    except OSError:
        return "torch loaded first"
    return "torch loaded first; OpenMP runtimes: " + ", ".join(sorted(found))


def run(args: argparse.Namespace) -> None:
    """Measures every contender named by ``args`` and prints the report."""
    runtimes = load_torch_first()
    try:
        import max.engine  # noqa: F401

        args.max = True
    except ImportError:
        args.max = False
    if args.no_load_gate:
        from ember.engine.backends.native.kernels import launch

        launch.GATE.has_room = lambda threads: True
    gate = "off (parallel kernels always)" if args.no_load_gate else "on"
    print(f"{versions()}\n{machine_note()}\n{runtimes}\nember's load gate: {gate}", flush=True)
    roofline = copy_roofline(3 if args.quick else 10)
    loads: list[str] = []
    rows: list[Row] = []
    dense32 = None
    for dtype in args.dtypes:
        np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
        table = random_table(np_dtype)
        rows += run_dense(args, dtype, table, roofline, loads)
        if dtype == "float32":
            dense32 = table
        del table
    if args.quant and dense32 is None and importlib.util.find_spec("ember.engine"):
        dense32 = random_table(np.dtype(np.float32))
    for fmt in args.quant:
        rows += run_quant(args, fmt, dense32, roofline, loads)
    del dense32
    copy_gbps = (1 << 28) / float(np.median(roofline)) / 1e9
    if args.max:
        loads += max_load_times()
    if importlib.util.find_spec("ember.engine"):
        loads += ember_load_times()
    print(
        f"\ncopy roofline: {copy_gbps:.2f} GB/s copied (median of {len(roofline)} copies of"
        f" 256 MiB, {THREADS}-thread numba prange)\n"
        "% of roofline: (bytes read + bytes written) / time / (2 x copy GB/s); a lookup whose"
        " stores skip the write-allocate read that a plain copy pays can pass 100%\n"
        "× MAX speed: MAX's time / the contender's time (same tokens, same table)\n"
    )
    print(report(rows, copy_gbps))
    print()
    if ratios := torch_ratios(rows):
        print("ember's time / torch's (below 1: ember faster)\n")
        print(ratios)
        print()
    for line in loads:
        print(line)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak RSS of this process: {peak:.1f} GiB")
    if args.png:
        plot(rows, copy_gbps, args.png)
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
