"""Vocabulary-parallel lookups against the unsharded lookup of the same ids, in one process.

A 128256 x 1024 float32 table split over 1, 2 and 4 CPU devices (`VocabParallelEmbedding`),
and an `EmbeddingV2` over the whole table, take turns (round-robin, median seconds per call)
on the same 8192 random ids. On the native backend the devices share host memory, so each
shard writes only its own rows into one result and every device reads it.

    python benchmarks/bench_vocab_parallel.py --backend native --devices 1 2 4
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np
from harness import (
    add_save_option,
    cycling,
    machine_note,
    ratio,
    recorded,
    round_robin,
    timed_slot,
)

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import DeviceRef, Graph, TensorType


def model(session: InferenceSession, table: np.ndarray, devices: int | None):
    vocab, hidden = table.shape
    if devices is None:
        layer = nn.EmbeddingV2(vocab, hidden, DType.float32, name="t")
    else:
        refs = [DeviceRef.CPU(i) for i in range(devices)]
        layer = nn.VocabParallelEmbedding(vocab, hidden, DType.float32, devices=refs, name="t")
    with Graph("lookup", input_types=[TensorType(DType.int32, ["n"])]) as g:
        out = layer(g.inputs[0])
        g.output(*(out if isinstance(out, list) else [out]))
    return session.load(g, {"t": table})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="native", choices=["native", "xla"])
    p.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--tokens", type=int, default=8192)
    p.add_argument("--vocab", type=int, default=128256)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--budget", type=float, default=6.0)
    add_save_option(p, "bench_vocab_parallel")
    args = p.parse_args(argv)
    with recorded(args.save):
        run(args)


def run(args: argparse.Namespace) -> None:
    """Checks each lookup against the table, times them in turns and prints the table."""
    table = np.random.default_rng(0).standard_normal((args.vocab, args.hidden), np.float32)
    session = InferenceSession(backend=args.backend)
    rng = np.random.default_rng(1)
    pool = [rng.integers(0, args.vocab, args.tokens).astype(np.int32) for _ in range(8)]
    models = {"unsharded": model(session, table, None)}
    for n in args.devices:
        models[f"{n} devices"] = model(session, table, n)
    for name, m in models.items():
        for out in m.execute(pool[0]):
            np.testing.assert_array_equal(out.to_numpy(), table[pool[0]], err_msg=name)
    calls = {
        name: cycling(lambda ids, m=m: ready(m.execute(ids)), pool) for name, m in models.items()
    }
    med = round_robin({k: timed_slot(c) for k, c in calls.items()}, args.budget, min_rounds=15)
    print(machine_note())
    print(f"{args.backend}: {args.vocab} x {args.hidden} float32, {args.tokens} ids")
    print("| lookup | median per call | x unsharded | bytes exchanged / masked all-reduce |")
    print("|---|---:|---:|---:|")
    for name, seconds in med.items():
        exchanged = exchange_ratio(models[name], pool[0]) if name != "unsharded" else None
        shown = "" if exchanged is None else f"{exchanged:.3f}"
        print(f"| {name} | {seconds * 1e3:.2f} ms | {ratio(seconds, med['unsharded'])} | {shown} |")


def ready(results: list) -> list:
    """The results once computed: XLA returns before its device work ends."""
    for result in results:
        getattr(result._array, "block_until_ready", lambda: None)()
    return results


def exchange_ratio(m, ids: np.ndarray) -> float | None:
    """Bytes the devices received in one XLA exchange, over what a ring all-reduce of masked
    full-size partials moves for the same output (2 (n - 1) times the output); None where
    nothing crosses devices (native: shared memory)."""
    [table] = getattr(m._executable, "_memo", {}).values() or [None]
    if table is None or len(table.devices) == 1:
        return None
    before = table.exchanged_bytes
    m.execute(ids)
    n, out_bytes = len(table.devices), ids.size * table.row_bytes
    return (table.exchanged_bytes - before) / (2 * (n - 1) * out_bytes)


if __name__ == "__main__":
    main()
