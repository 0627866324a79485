"""Pooled lookups side by side: ember's `nn.EmbeddingBag` and `nn.EmbeddingBagCollection`
against torch's `F.embedding_bag` (float32) and its rowwise-quantized ops
(`embedding_bag_byte_rowwise_offsets`, `embedding_bag_4bit_rowwise_offsets`), sum pooling, in
one process on the same data (the quantized tables are torch's own prepacked bytes).

FBGEMM's benchmark shape (`tbe_inference_benchmark`'s defaults): batch 512, bags of 20 ids,
width 128. Each call reads a fresh id set, cycling through 64 of them, so rows come from
memory rather than from the last call's cache. Ids are uniform, or Zipf(1.15) as FBGEMM's
request generator draws them (`zipf(1.15) - 1`, modulo the rows). The `collection` case is 32
int8 tables of 100k rows, one feature each: one ember call against torch's 32 calls. With
`--weighted`, every id has a per-sample weight (drawn with its id set), given to both.
Contenders take turns in rounds (ember, torch, ember, ...); each round times `--calls` calls,
and the median seconds per call over `--rounds` rounds is reported. Bytes are counted as
FBGEMM counts them: the rows' values read (at the format's bits per value, row scales left
out) plus the float32 pooled rows written.

Each contender reads its own copy of the table, allocated by torch as a torch user's table is
(4 KiB pages). Ember's `load` moves large weights into 2 MiB pages (`EMBER_HUGE_PAGES`); torch
leaves its tables where they are. So the third contender is torch on a copy moved into 2 MiB
pages the same way: ember against it compares the kernels alone.

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
    versions,
)

os.environ.setdefault("EMBER_COMPILE", "sync")  # timed calls run the compiled kernels

BATCH, BAG, WIDTH, ID_SETS = 512, 20, 128, 64
ZIPF_ALPHA = 1.15
COLLECTION_TABLES, COLLECTION_ROWS = 32, 100_000
FORMATS = {"float32": 32, "int8": 8, "int4": 4}
"""Each table format and its bits per value."""


def id_sets(rows: int, distribution: str, count: int = BATCH * BAG, seed: int = 0):
    rng = np.random.default_rng(seed)
    size = (ID_SETS, count)
    if distribution == "uniform":
        ids = rng.integers(0, rows, size)
    else:
        ids = (rng.zipf(ZIPF_ALPHA, size) - 1) % rows
    return list(ids.astype(np.int64))


def packed(table, fmt: str):
    """The table as torch's users hold it: float32, or torch's prepacked rowwise bytes, in
    memory torch allocated."""
    import torch

    weight = torch.from_numpy(table)
    if fmt == "int8":
        return torch.ops.quantized.embedding_bag_byte_prepack(weight)
    if fmt == "int4":
        return torch.ops.quantized.embedding_bag_4bit_prepack(weight)
    return weight.clone()


def copies(weight):
    """Three copies of a torch table, in memory torch allocated: torch's, ember's, and one
    moved into 2 MiB pages as ember's `load` moves its weights."""
    from ember.engine.backends.native import huge_pages

    in_huge_pages = weight.clone()
    huge_pages.advise([in_huge_pages.numpy()])
    huge_pages.wait()
    return weight, weight.clone().numpy(), in_huge_pages


def ember_bag(table: np.ndarray, fmt: str, threads: int, weighted: bool = False):
    import ember.nn as nn
    from ember.dtype import DType
    from ember.engine import InferenceSession, wait_for_kernels
    from ember.graph import Graph, QuantizationEncoding, TensorType

    encoding = None if fmt == "float32" else QuantizationEncoding[f"ROWWISE_{fmt.upper()}"]
    dtype = DType.float32 if encoding is None else DType.uint8
    bag = nn.EmbeddingBag(table.shape[0], table.shape[1], dtype, name="t", mode="sum",
                          quantization_encoding=encoding)  # fmt: skip
    types = [TensorType(DType.int64, ["n"]), TensorType(DType.int64, ["bags"])]
    if weighted:
        types.append(TensorType(DType.float32, ["n"]))
    with Graph("bags", input_types=types) as g:
        g.output(bag(*g.inputs))
    model = InferenceSession(num_threads=threads).load(g, {"t": table})
    wait_for_kernels()  # and for the table's move into 2 MiB pages
    return lambda *inputs: model.execute(*inputs)[0].to_numpy()


def torch_bag(weight, fmt: str, threads: int):
    import torch

    if fmt == "float32":
        op = torch.nn.functional.embedding_bag
    else:
        quantized = {
            "int8": torch.ops.quantized.embedding_bag_byte_rowwise_offsets,
            "int4": torch.ops.quantized.embedding_bag_4bit_rowwise_offsets,
        }[fmt]

        def op(ids, weight, offsets, mode, per_sample_weights=None):
            return quantized(weight, ids, offsets, mode=0, per_sample_weights=per_sample_weights)

    def call(ids, offsets, weights=None):
        torch.set_num_threads(threads)
        return op(ids, weight, offsets, mode="sum", per_sample_weights=weights).numpy()

    return call


def ember_collection(tables: list[np.ndarray], threads: int):
    import ember.nn as nn
    from ember.dtype import DType
    from ember.engine import InferenceSession, wait_for_kernels
    from ember.graph import Graph, QuantizationEncoding, TensorType

    bags = [
        nn.EmbeddingBag(t.shape[0], t.shape[1], DType.uint8, name=f"t{i}",
                        quantization_encoding=QuantizationEncoding.ROWWISE_INT8)
        for i, t in enumerate(tables)
    ]  # fmt: skip
    types = [TensorType(DType.int64, ["n"]), TensorType(DType.int64, [len(bags), "batch"])]
    with Graph("collection", input_types=types) as g:
        g.output(nn.EmbeddingBagCollection(bags)(*g.inputs))
    weights = {f"t{i}": t for i, t in enumerate(tables)}
    model = InferenceSession(num_threads=threads).load(g, weights)
    wait_for_kernels()
    return lambda values, lengths: model.execute(values, lengths)[0].to_numpy()


def torch_collection(weights: list, threads: int):
    import torch

    op = torch.ops.quantized.embedding_bag_byte_rowwise_offsets

    def call(values, offsets):
        torch.set_num_threads(threads)
        per_table = values.view(len(weights), -1)
        return [op(w, ids, offsets, mode=0) for w, ids in zip(weights, per_table, strict=True)]

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 2_000_000])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--distributions", nargs="+", default=["uniform", "zipf"])
    parser.add_argument("--formats", nargs="+", default=[*FORMATS, "collection"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=32)
    parser.add_argument(
        "--batch",
        type=int,
        default=BATCH,
        help=f"bags per call (default {BATCH}: FBGEMM's; small ones measure the per-call cost)",
    )
    parser.add_argument(
        "--weighted",
        action="store_true",
        help="per-sample weights (single bags; the collection is left out)",
    )
    parser.add_argument(
        "--no-load-gate",
        action="store_true",
        help="let ember's parallel kernels run even when other tasks hold the cores (torch's "
        "threads never step aside; ember's launch gate runs one thread then)",
    )
    add_save_option(parser, "bench_bags")
    args = parser.parse_args()
    if args.no_load_gate:
        from ember.engine.backends.native.kernels import launch

        launch.GATE.has_room = lambda threads: True
    with recorded(args.save):
        run(args)


def timed(ember, peer, huge_peer, ember_sets, peer_sets, args) -> tuple[float, float, float]:
    """Median seconds per call of ember, torch and torch on 2 MiB pages, in turns."""
    slots = {
        name: fixed_slot(cycling(lambda s, f=call: f(*s), sets), args.calls)
        for name, call, sets in (
            ("ember", ember, ember_sets),
            ("torch", peer, peer_sets),
            ("huge", huge_peer, peer_sets),
        )
    }
    seconds = medians(interleave(slots, args.rounds, warmup=3))
    return seconds["ember"], seconds["torch"], seconds["huge"]


def report(label: str, lookups: int, moved: float, a: float, b: float, c: float) -> None:
    print(
        f"| {label} | {lookups / a / 1e6:.1f} | {moved / a / 1e9:.2f} | {lookups / b / 1e6:.1f} | "
        f"{moved / b / 1e9:.2f} | {ratio(b, a)}x | {lookups / c / 1e6:.1f} | {ratio(c, a)}x |"
    )


def check(got, want, label: str) -> None:
    if not np.allclose(got, want, rtol=1e-4, atol=1e-3):
        raise SystemExit(f"{label}: ember and torch disagree by {np.abs(got - want).max()}")


def run(args: argparse.Namespace) -> None:
    """Checks ember against torch, then times both for every format, table, distribution and
    thread count, and prints one table row each."""
    import torch

    batch = args.batch
    offsets = np.arange(0, batch * BAG, BAG, dtype=np.int64)
    lookups = batch * BAG
    print(machine_note())
    print(versions())
    print(f"medians of {args.rounds} rounds taken in turns, {args.calls} calls per turn")
    weighing = ", per-sample weights" if args.weighted else ""
    print(f"batch {batch}, bags of {BAG}, width {WIDTH}, sum{weighing}, {ID_SETS} id sets")
    gate = "off (parallel kernels always)" if args.no_load_gate else "on"
    print(f"ember's load gate: {gate}")
    print(
        "| format, rows, ids, threads | ember M lookups/s | ember GB/s | torch M lookups/s |"
        " torch GB/s | ember / torch | torch on 2 MiB pages M lookups/s | ember / that |"
    )
    print("|---" * 8 + "|")
    torch_offsets = torch.from_numpy(offsets)
    for rows in args.rows:
        values = np.random.default_rng(1).standard_normal((rows, WIDTH)).astype(np.float32)
        for fmt in [f for f in FORMATS if f in args.formats]:
            weight, table, huge_weight = copies(packed(values, fmt))
            moved = lookups * WIDTH * FORMATS[fmt] / 8 + batch * WIDTH * 4
            for distribution in args.distributions:
                sets = id_sets(rows, distribution, lookups)
                scales = sample_weights(len(sets), lookups) if args.weighted else [()] * len(sets)
                sets_np = [(ids, offsets, *w) for ids, w in zip(sets, scales, strict=True)]
                sets_torch = [
                    (torch.from_numpy(ids), torch_offsets, *map(torch.from_numpy, w))
                    for ids, w in zip(sets, scales, strict=True)
                ]
                for threads in args.threads:
                    ember = ember_bag(table, fmt, threads, args.weighted)
                    peer = torch_bag(weight, fmt, threads)
                    huge_peer = torch_bag(huge_weight, fmt, threads)
                    label = f"{fmt}, {rows:,}, {distribution}, {threads}"
                    check(ember(*sets_np[0]), peer(*sets_torch[0]), label)
                    seconds = timed(ember, peer, huge_peer, sets_np, sets_torch, args)
                    report(label, lookups, moved, *seconds)
            del weight, table, huge_weight
        del values
    if "collection" in args.formats and not args.weighted:
        run_collection(args, offsets)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB (tables, both contenders' inputs and torch)")


def sample_weights(count: int, ids: int) -> list[tuple[np.ndarray]]:
    """Per-sample weights for `count` id sets of `ids` ids, one float32 in [-1, 1) per id."""
    rng = np.random.default_rng(4)
    return [(rng.uniform(-1, 1, ids).astype(np.float32),) for _ in range(count)]


def run_collection(args: argparse.Namespace, offsets: np.ndarray) -> None:
    """32 int8 tables of 100k rows: one ember call against torch's 32."""
    import torch

    rng = np.random.default_rng(2)
    weights, tables, huge_weights = zip(
        *(
            copies(packed(rng.standard_normal((COLLECTION_ROWS, WIDTH)).astype(np.float32), "int8"))
            for _ in range(COLLECTION_TABLES)
        ),
        strict=True,
    )
    batch = args.batch
    lookups = COLLECTION_TABLES * batch * BAG
    moved = lookups * WIDTH + COLLECTION_TABLES * batch * WIDTH * 4
    lengths = np.full((COLLECTION_TABLES, batch), BAG, np.int64)
    torch_offsets = torch.from_numpy(offsets)
    for distribution in args.distributions:
        sets = id_sets(COLLECTION_ROWS, distribution, lookups, seed=3)
        sets_np = [(values, lengths) for values in sets]
        sets_torch = [(torch.from_numpy(values), torch_offsets) for values in sets]
        for threads in args.threads:
            ember = ember_collection(tables, threads)
            peer = torch_collection(weights, threads)
            huge_peer = torch_collection(huge_weights, threads)
            label = f"collection of {COLLECTION_TABLES} int8, {COLLECTION_ROWS:,}, "
            label += f"{distribution}, {threads}"
            want = torch.cat(peer(*sets_torch[0]), dim=1).numpy()
            check(ember(*sets_np[0]), want, label)
            seconds = timed(ember, peer, huge_peer, sets_np, sets_torch, args)
            report(label, lookups, moved, *seconds)


if __name__ == "__main__":
    main()
