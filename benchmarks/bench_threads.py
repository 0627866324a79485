"""Several Python threads executing one loaded ember model at once, as a server's request
threads would: does the throughput grow with the threads, or do they wait on each other?

Each thread calls ``model.execute(ids)`` in a loop for ``--seconds`` on its own random ids over
the 128256 x 4096 (Llama-3) table; the total calls per second over all threads is taken from
``--repeats`` runs (median) and set against one thread's. When torch is importable,
``torch.nn.functional.embedding`` runs the same way on a zero-copy view of the same table,
interleaved with ember (ember, then torch, in every repeat), with each library's default thread
count. Every thread's first and last result of a run is checked bit for bit against numpy's
fancy indexing; a wrong row ends the benchmark.

    python benchmarks/bench_threads.py --seconds 1 --tokens 1 64 --threads 1 2 4
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import threading
import time
from collections.abc import Callable

import ml_dtypes
import numpy as np
from embedding_tables import HIDDEN, VOCAB, random_table, same_bytes

# Timed calls run ember's compiled kernels: where ember compiles in the background, lookups go
# through numpy until their kernel is ready, which belongs to load time (see bench_load.py).
os.environ.setdefault("EMBER_COMPILE", "sync")

IDS_PER_THREAD = 64
"""Id sets each thread cycles through, so calls do not all hit the same few rows."""


class WrongResult(AssertionError):
    """A thread got rows that differ from numpy's fancy indexing."""


def ember_call(table: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A float32 or bfloat16 embedding model, loaded once in a default session; returns a
    call of ids to the result as numpy."""
    import ember.nn as enn
    from ember.dtype import DType
    from ember.engine import InferenceSession
    from ember.graph import DeviceRef, Graph, TensorType

    emb = enn.EmbeddingV2(
        vocab_size=table.shape[0],
        hidden_dim=table.shape[1],
        dtype=DType.from_numpy(table.dtype),
        device=DeviceRef.CPU(),
        name="tok",
    )
    with Graph("embed", input_types=[TensorType(DType.int32, ["n"], DeviceRef.CPU())]) as g:
        g.output(emb(g.inputs[0]))
    model = InferenceSession().load(g, weights_registry={"tok": table})
    return lambda ids: model.execute(ids)[0].to_numpy()


def torch_call(table: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """``F.embedding`` on a zero-copy torch view of ``table``; ids are converted outside the
    timed loop (see ``prepare``), results come back as numpy views."""
    import torch
    import torch.nn.functional as F

    if table.dtype == ml_dtypes.bfloat16:
        weight = torch.from_numpy(table.view(np.int16)).view(torch.bfloat16)
    else:
        weight = torch.from_numpy(table)

    def call(ids):
        out = F.embedding(ids, weight)
        return out.view(torch.int16).numpy() if out.dtype == torch.bfloat16 else out.numpy()

    call.prepare = torch.from_numpy
    return call


def run_threads(
    call: Callable, pools: list[list[np.ndarray]], table: np.ndarray, seconds: float
) -> float:
    """Total calls per second of ``len(pools)`` threads, each calling ``call`` on its own pool
    of id sets for ``seconds``; every thread's first and last result is checked.

    Raises:
        WrongResult: a thread got wrong rows. Any exception in a thread is raised here too.
    """
    prepare = getattr(call, "prepare", lambda ids: ids)
    start_line = threading.Barrier(len(pools) + 1)
    counts = [0] * len(pools)
    starts = [0.0] * len(pools)
    ends = [0.0] * len(pools)
    errors: list[BaseException] = []

    def check(ids: np.ndarray, out: np.ndarray, which: str) -> None:
        if not same_bytes(out, np.take(table, ids, axis=0)):
            raise WrongResult(f"{which} result of a thread differs from numpy for ids {ids[:8]}")

    def work(t: int) -> None:
        try:
            items = [(ids, prepare(ids)) for ids in pools[t]]
            check(items[0][0], call(items[0][1]), "first")
            start_line.wait()
            starts[t] = time.perf_counter()
            deadline = starts[t] + seconds
            n, last = 0, None
            while time.perf_counter() < deadline:
                ids, arg = items[n % len(items)]
                last = (ids, call(arg))
                n += 1
            ends[t] = time.perf_counter()
            counts[t] = n
            if last is not None:
                check(*last, "last")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            start_line.abort()

    threads = [threading.Thread(target=work, args=(t,)) for t in range(len(pools))]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a worker failed: see errors
        start_line.wait()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return sum(counts) / (max(ends) - min(starts))


def id_pools(threads: int, tokens: int, seed: int) -> list[list[np.ndarray]]:
    """Each thread's own id sets of ``tokens`` random ids."""
    rng = np.random.default_rng(seed)
    return [
        list(rng.integers(0, VOCAB, (IDS_PER_THREAD, tokens), dtype=np.int32))
        for _ in range(threads)
    ]


def report(rates: dict[tuple, list[float]], names: list[str], thread_counts: list[int]) -> str:
    """Medians of total calls/s with each library's ratio to its one-thread rate (and ember's
    to torch's, when torch ran)."""
    cols = [f"{'dtype':>8}", f"{'tokens':>6}", f"{'threads':>7}"]
    for name in names:
        cols += [f"{name + ' calls/s':>14}", f"{'x 1 thread':>10}"]
    if len(names) > 1:
        cols.append(f"{'ember/torch':>11}")
    lines = ["  ".join(cols), "-" * len("  ".join(cols))]
    keys = sorted({k[:2] for k in rates}, key=lambda k: (k[0] != "float32", k[1]))
    for dtype, tokens in keys:
        for n in thread_counts:
            cells = [f"{dtype:>8}", f"{tokens:>6}", f"{n:>7}"]
            median = {}
            for name in names:
                median[name] = float(np.median(rates[(dtype, tokens, name, n)]))
                one = float(np.median(rates[(dtype, tokens, name, thread_counts[0])]))
                cells += [f"{median[name]:>14.0f}", f"{median[name] / one:>10.2f}"]
            if len(names) > 1:
                cells.append(f"{median['ember'] / median['torch']:>11.2f}")
            lines.append("  ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Runs every dtype, token count and thread count; prints the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=1.0, help="length of one timed run")
    p.add_argument("--tokens", type=int, nargs="+", default=[1, 64])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--repeats", type=int, default=5, help="runs per cell (median)")
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    args = p.parse_args(argv)
    thread_counts = sorted(set(args.threads))
    has_torch = importlib.util.find_spec("torch") is not None
    names = ["ember", "torch"] if has_torch else ["ember"]
    print(f"{os.cpu_count()} CPUs; {VOCAB} x {HIDDEN} table; {', '.join(names)}", flush=True)
    rates: dict[tuple, list[float]] = {}
    for dtype in args.dtypes:
        table = random_table(ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype))
        calls = {"ember": ember_call(table)}
        if has_torch:
            calls["torch"] = torch_call(table)
        for tokens in args.tokens:
            for repeat in range(args.repeats):
                for n in thread_counts:
                    pools = id_pools(n, tokens, seed=1000 * repeat + n)
                    for name, call in calls.items():  # interleaved: ember, then torch
                        rate = run_threads(call, pools, table, args.seconds)
                        rates.setdefault((dtype, tokens, name, n), []).append(rate)
            print(f"  done {dtype} x {tokens} tokens", flush=True)
        del calls, table
    print(f"\ntotal calls/s of all threads, median of {args.repeats} runs of {args.seconds} s")
    print(f"x 1 thread: that rate / the same library's rate with {thread_counts[0]} thread(s)")
    print("every thread's first and last result matched numpy bit for bit\n")
    print(report(rates, names, thread_counts))


if __name__ == "__main__":
    main()
