"""Pooled lookups side by side: ember's `nn.EmbeddingBag` against torch's `F.embedding_bag`,
float32 sum, in one process on the same data.

FBGEMM's benchmark shape (`tbe_inference_benchmark`'s defaults): batch 512, bags of 20 ids,
width 128. Each call reads a fresh id set, cycling through 64 of them, so rows come from
memory rather than from the last call's cache. Ids are uniform, or Zipf(1.15) as FBGEMM's
request generator draws them (`zipf(1.15) - 1`, modulo the rows). Contenders take turns in
rounds (ember, torch, ember, ...); each round times `--calls` calls, and the median seconds
per call over `--rounds` rounds is reported. Bytes are counted as FBGEMM counts them: the rows
read plus the pooled rows written.

    .venv-peers/bin/python benchmarks/bench_bags.py --rows 100000 2000000 --threads 1 2
"""

from __future__ import annotations

import argparse
import os
import resource

import numpy as np
from harness import (
    add_save_option,
    cycling,
    fixed_slot,
    interleave,
    machine_note,
    medians,
    ratio,
    recorded,
)

os.environ.setdefault("EMBER_COMPILE", "sync")  # timed calls run the compiled kernels

BATCH, BAG, WIDTH, ID_SETS = 512, 20, 128, 64
ZIPF_ALPHA = 1.15


def id_sets(rows: int, distribution: str, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    size = (ID_SETS, BATCH * BAG)
    if distribution == "uniform":
        ids = rng.integers(0, rows, size)
    else:
        ids = (rng.zipf(ZIPF_ALPHA, size) - 1) % rows
    return list(ids.astype(np.int64))


def ember_call(table: np.ndarray, threads: int):
    import ember.nn as nn
    from ember.dtype import DType
    from ember.engine import InferenceSession
    from ember.graph import Graph, TensorType

    bag = nn.EmbeddingBag(table.shape[0], WIDTH, DType.float32, name="t", mode="sum")
    types = [TensorType(DType.int64, ["n"]), TensorType(DType.int64, ["bags"])]
    with Graph("bags", input_types=types) as g:
        g.output(bag(*g.inputs))
    model = InferenceSession(num_threads=threads).load(g, {"t": table})
    return lambda ids, offsets: model.execute(ids, offsets)[0].to_numpy()


def torch_call(table: np.ndarray, threads: int):
    import torch

    weight = torch.from_numpy(table)

    def call(ids, offsets):
        torch.set_num_threads(threads)
        return torch.nn.functional.embedding_bag(ids, weight, offsets, mode="sum").numpy()

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 2_000_000])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--distributions", nargs="+", default=["uniform", "zipf"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=32)
    add_save_option(parser, "bench_bags")
    args = parser.parse_args()
    with recorded(args.save):
        run(args)


def run(args: argparse.Namespace) -> None:
    """Checks ember against torch, then times both for every table, distribution and thread
    count, and prints one table row each."""
    import torch

    offsets = np.arange(0, BATCH * BAG, BAG, dtype=np.int64)
    lookups = BATCH * BAG
    moved = (lookups + BATCH) * WIDTH * 4
    print(machine_note())
    print(f"medians of {args.rounds} rounds taken in turns, {args.calls} calls per turn")
    print(f"batch {BATCH}, bags of {BAG}, width {WIDTH}, float32 sum, {ID_SETS} id sets")
    header = "| rows | ids | threads | ember M lookups/s | ember GB/s | torch M lookups/s |"
    print(header + " torch GB/s | ember / torch |")
    print("|---" * 7 + "|")
    for rows in args.rows:
        table = np.random.default_rng(1).standard_normal((rows, WIDTH)).astype(np.float32)
        for distribution in args.distributions:
            sets_np = [(ids, offsets) for ids in id_sets(rows, distribution)]
            sets_torch = [(torch.from_numpy(i), torch.from_numpy(o)) for i, o in sets_np]
            for threads in args.threads:
                ember, peer = ember_call(table, threads), torch_call(table, threads)
                got, want = ember(*sets_np[0]), peer(*sets_torch[0])
                if not np.allclose(got, want, rtol=1e-5, atol=1e-4):
                    raise SystemExit(f"ember and torch disagree: {np.abs(got - want).max()}")
                slots = {
                    "ember": fixed_slot(cycling(lambda s, f=ember: f(*s), sets_np), args.calls),
                    "torch": fixed_slot(cycling(lambda s, f=peer: f(*s), sets_torch), args.calls),
                }
                seconds = medians(interleave(slots, args.rounds, warmup=3))
                a, b = seconds["ember"], seconds["torch"]
                print(
                    f"| {rows:,} | {distribution} | {threads} | {lookups / a / 1e6:.1f} | "
                    f"{moved / a / 1e9:.2f} | {lookups / b / 1e6:.1f} | {moved / b / 1e9:.2f} | "
                    f"{ratio(b, a)}x |"
                )
        del table
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB (tables, both contenders' inputs and torch)")


if __name__ == "__main__":
    main()
