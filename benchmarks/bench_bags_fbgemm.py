"""Many tables in one call against FBGEMM: ember's `nn.EmbeddingBagCollection`, FBGEMM's
table-batched `IntNBitTableBatchedEmbeddingBagsCodegen` on CPU, and torch's rowwise-quantized
op called once per table (`embedding_bag_byte_rowwise_offsets` / `..._4bit_...`), sum pooling,
in one process on the same values.

FBGEMM's shape (`tbe_inference_benchmark nbit-cpu`'s defaults): 32 tables of 100k rows, batch
512, bags of 20 ids, width 128, rowwise int8 and int4 rows, int32 ids and offsets as that
benchmark passes them; every contender gets those same ids. FBGEMM writes float32 here (its
benchmark's default is float16) because ember and torch write float32; its bounds check is its
constructor's default (WARNING), or none with `--bounds-check none`. FBGEMM 1.8.0's CPU kernel
pools the tables one after another on one thread whatever torch's thread count (its benchmark
runs copies in processes to use more cores). Each call reads a fresh id set, cycling through
64, ids uniform or Zipf(1.15) (`bench_bags.id_sets`). Contenders take turns in rounds, in a
shuffled order; each turn times `--calls` calls and the median seconds per call over
`--rounds` rounds is reported. Bytes are counted as FBGEMM counts them: values read at the
format's bits plus float32 pooled rows written.

The rows hold the same values for all three: torch prepacks each table (values, then a float32
scale and bias for int8, a float16 scale and bias for int4), which ember reads as it is
(ROWWISE_INT8 / ROWWISE_INT4). FBGEMM's rows hold a float16 scale and bias first, then the
values, so they are converted: int8 scales and biases are rounded to float16 and written back
into torch's bytes as float32, so that every contender decodes `q * scale + bias` with the same
numbers; int4 rows only move their 4 tail bytes to the front. Before timing, each contender's
result on the first id set is checked against a float64 pooled sum of the decoded rows, within
`n * 2**-24 * sum |x_i|` (float32 accumulation of n terms).

FBGEMM needs its own environment (fbgemm-gpu-cpu 1.8.0 is the release built for torch 2.13;
1.9.0 is built for torch 2.14 and fails to load with 2.13):

    python3 -m venv /tmp/fbgemm-venv
    /tmp/fbgemm-venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
    /tmp/fbgemm-venv/bin/pip install fbgemm-gpu-cpu==1.8.0 -e .
    /tmp/fbgemm-venv/bin/python benchmarks/bench_bags_fbgemm.py --threads 1 2
"""

from __future__ import annotations

import argparse
import os
import resource

import numpy as np
from bench_bags import BAG, BATCH, COLLECTION_ROWS, COLLECTION_TABLES, WIDTH, id_sets, packed
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

BITS = {"int8": 8, "int4": 4}
EPS32 = 2.0**-24


def tables(fmt: str, seed: int = 2) -> list:
    """32 tables of torch's prepacked rows; int8 scales and biases rounded to float16."""
    import torch

    rng = np.random.default_rng(seed)
    weights = []
    for _ in range(COLLECTION_TABLES):
        weight = packed(rng.standard_normal((COLLECTION_ROWS, WIDTH)).astype(np.float32), fmt)
        if fmt == "int8":
            tail = weight[:, -8:].view(torch.float32)
            weight[:, -8:] = tail.to(torch.float16).to(torch.float32).view(torch.uint8)
        weights.append(weight)
    return weights


def fbgemm_collection(weights: list, fmt: str, threads: int, bounds_check: str = "warning"):
    """FBGEMM's table-batched module over the same rows, scale and bias moved to the front."""
    import torch
    from fbgemm_gpu.split_embedding_configs import SparseType
    from fbgemm_gpu.split_table_batched_embeddings_ops_common import (
        BoundsCheckMode,
        EmbeddingLocation,
        PoolingMode,
    )
    from fbgemm_gpu.split_table_batched_embeddings_ops_inference import (
        IntNBitTableBatchedEmbeddingBagsCodegen,
    )

    kind = {"int8": SparseType.INT8, "int4": SparseType.INT4}[fmt]
    specs = [("", COLLECTION_ROWS, WIDTH, kind, EmbeddingLocation.HOST)] * len(weights)
    module = IntNBitTableBatchedEmbeddingBagsCodegen(
        specs,
        device="cpu",
        pooling_mode=PoolingMode.SUM,
        output_dtype=SparseType.FP32,
        bounds_check_mode=BoundsCheckMode[bounds_check.upper()],
    )
    module.initialize_weights()
    tail = 8 if fmt == "int8" else 4
    for (values, scale_bias), weight in zip(module.split_embedding_weights(), weights, strict=True):
        values.copy_(weight[:, :-tail])
        if fmt == "int8":
            scale_bias.copy_(weight[:, -8:].view(torch.float32).to(torch.float16).view(torch.uint8))
        else:
            scale_bias.copy_(weight[:, -4:])

    def call(indices, offsets):
        torch.set_num_threads(threads)
        return module(indices, offsets).numpy()

    return call


def ember_collection(weights: list, fmt: str, threads: int, ids_dtype):
    """ember's collection of one ROWWISE_INT8 / ROWWISE_INT4 bag per table, torch's bytes."""
    import ember.nn as nn
    from ember.dtype import DType
    from ember.engine import InferenceSession
    from ember.graph import Graph, QuantizationEncoding, TensorType

    encoding = QuantizationEncoding[f"ROWWISE_{fmt.upper()}"]
    bags = [
        nn.EmbeddingBag(COLLECTION_ROWS, w.shape[1], DType.uint8, name=f"t{i}",
                        quantization_encoding=encoding)
        for i, w in enumerate(weights)
    ]  # fmt: skip
    dtype = DType.from_numpy(ids_dtype)
    types = [TensorType(dtype, ["n"]), TensorType(dtype, [len(bags), "batch"])]
    with Graph("collection", input_types=types) as g:
        g.output(nn.EmbeddingBagCollection(bags)(*g.inputs))
    model = InferenceSession(num_threads=threads).load(
        g, {f"t{i}": w.numpy() for i, w in enumerate(weights)}
    )
    return lambda values, lengths: model.execute(values, lengths)[0].to_numpy()


def torch_collection(weights: list, fmt: str, threads: int):
    """torch's rowwise op once per table."""
    import torch

    op = {
        "int8": torch.ops.quantized.embedding_bag_byte_rowwise_offsets,
        "int4": torch.ops.quantized.embedding_bag_4bit_rowwise_offsets,
    }[fmt]

    def call(values, offsets):
        torch.set_num_threads(threads)
        per_table = values.view(len(weights), -1)
        return [op(w, ids, offsets, mode=0) for w, ids in zip(weights, per_table, strict=True)]

    return call


def reference(weights: list, fmt: str, values: np.ndarray):
    """float64 pooled sums of the decoded rows, `(batch, tables * width)`, and their bound."""
    from ember.quant import FORMATS

    decode = FORMATS[f"rowwise_{fmt}"].dequantize
    per_table = values.reshape(len(weights), BATCH, BAG)
    sums, bounds = [], []
    for weight, ids in zip(weights, per_table, strict=True):
        rows = decode(weight.numpy()[ids.reshape(-1)]).astype(np.float64)
        rows = rows.reshape(BATCH, BAG, -1)
        sums.append(rows.sum(axis=1))
        bounds.append(BAG * EPS32 * np.abs(rows).sum(axis=1))
    return np.concatenate(sums, axis=1), np.concatenate(bounds, axis=1)


def check(results: dict[str, np.ndarray], want: np.ndarray, bound: np.ndarray, label: str):
    """Each result within the float32 bound of the float64 reference; prints how close."""
    notes = []
    for name, got in results.items():
        excess = np.abs(got.astype(np.float64) - want) / (bound + 1e-30)
        if got.shape != want.shape or (excess > 1).any():
            raise SystemExit(f"{label}: {name} is off by {np.abs(got - want).max()}")
        notes.append(f"{name} {excess.max():.1e}")
    same = all(np.array_equal(results["ember"], got) for got in results.values())
    spread = "bit for bit" if same else f"{np.abs(results['ember'] - results['fbgemm']).max():.1e}"
    print(f"checked {label}: worst |error| / bound: {', '.join(notes)}; "
          f"ember against FBGEMM and torch: {spread}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--formats", nargs="+", default=list(BITS), choices=list(BITS))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--distributions", nargs="+", default=["uniform", "zipf"])
    parser.add_argument("--ids", choices=["int32", "int64"], default="int32")
    parser.add_argument(
        "--bounds-check",
        choices=["warning", "none"],
        default="warning",
        help="FBGEMM's bounds check: its default (WARNING, a pass over the ids that fixes bad "
        "ones) or none (ember checks every id either way)",
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=16)
    parser.add_argument(
        "--no-load-gate",
        action="store_true",
        help="let ember's parallel kernels run even when other tasks hold the cores",
    )
    add_save_option(parser, "bench_bags_fbgemm")
    args = parser.parse_args()
    if args.no_load_gate:
        from ember.engine.backends.native.kernels import launch

        launch.GATE.has_room = lambda threads: True
    with recorded(args.save):
        run(args)


def run(args: argparse.Namespace) -> None:
    import torch

    ids_dtype = np.dtype(args.ids)
    tables_n = COLLECTION_TABLES
    lookups = tables_n * BATCH * BAG
    lengths = np.full((tables_n, BATCH), BAG, ids_dtype)
    offsets_all = torch.arange(0, lookups + 1, BAG, dtype=getattr(torch, args.ids))
    offsets_one = offsets_all[:BATCH]
    print(machine_note())
    print(versions(("numpy", "numba", "torch", "fbgemm-gpu-cpu", "ember")))
    print(f"torch threads as set per call; interop {torch.get_num_interop_threads()}")
    print(f"medians of {args.rounds} rounds in shuffled turns, {args.calls} calls per turn")
    print(f"{tables_n} tables of {COLLECTION_ROWS:,} rows, batch {BATCH}, bags of {BAG}, "
          f"width {WIDTH}, sum, {args.ids} ids, 64 id sets")  # fmt: skip
    gate = "off (parallel kernels always)" if args.no_load_gate else "on"
    print(f"ember's load gate: {gate}; FBGEMM's bounds check: {args.bounds_check}")
    rows = []
    shuffle = np.random.default_rng(0)
    for fmt in args.formats:
        weights = tables(fmt)
        moved = lookups * WIDTH * BITS[fmt] / 8 + tables_n * BATCH * WIDTH * 4
        sets = {
            d: [v.astype(ids_dtype) for v in id_sets(COLLECTION_ROWS, d, lookups, seed=3)]
            for d in args.distributions
        }
        fbgemm_of = {t: fbgemm_collection(weights, fmt, t, args.bounds_check) for t in args.threads}
        for threads in args.threads:
            contenders = {
                "ember": ember_collection(weights, fmt, threads, ids_dtype),
                "fbgemm": fbgemm_of[threads],
                "torch": torch_collection(weights, fmt, threads),
            }
            for distribution, values in sets.items():
                inputs = {
                    "ember": [(v, lengths) for v in values],
                    "fbgemm": [(torch.from_numpy(v), offsets_all) for v in values],
                    "torch": [(torch.from_numpy(v), offsets_one) for v in values],
                }
                label = f"{fmt}, {distribution}, {threads} thread{'s' * (threads > 1)}"
                got = {name: f(*inputs[name][0]) for name, f in contenders.items()}
                got["torch"] = np.concatenate([o.numpy() for o in got["torch"]], axis=1)
                check(got, *reference(weights, fmt, values[0]), label)
                slots = {
                    name: fixed_slot(cycling(lambda s, f=f: f(*s), inputs[name]), args.calls)
                    for name, f in contenders.items()
                }
                seconds = medians(interleave(slots, args.rounds, warmup=3, shuffle=shuffle))
                rows.append((label, seconds, moved))
        del weights, fbgemm_of, contenders
    print()
    print("| format, ids, threads | ember M lookups/s (GB/s) | FBGEMM TBE | torch, 32 calls |"
          " ember / FBGEMM | ember / torch |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for label, s, moved in rows:
        cells = [f"{lookups / s[n] / 1e6:.1f} ({moved / s[n] / 1e9:.2f})" for n in s]
        print(f"| {label} | {' | '.join(cells)} | {ratio(s['fbgemm'], s['ember'])}x | "
              f"{ratio(s['torch'], s['ember'])}x |")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB (both table layouts, every contender, torch)")


if __name__ == "__main__":
    main()
