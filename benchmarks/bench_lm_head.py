"""The tied LM head side by side: ember's `nn.LMHead` against torch's `F.linear` (and
`torch.topk` for the top-k mode), beside the read roofline, all in one process.

Every contender computes the logits of the same hidden states against one 128256 x 4096 table
(the Llama-3 vocabulary; `--vocab` for quicker runs), shared in memory by both (torch reads the
same bytes through `torch.from_numpy`). Contenders take turns round-robin and the median
seconds per call is reported; ratio = ember's time / torch's (below 1: ember faster). The
roofline is `torch.sum` over the float32 table: the rate at which two threads stream it.

ember takes float32 hidden states and returns float32 logits for either table dtype; torch's
`F.linear` needs one dtype, so for a bfloat16 table it multiplies bfloat16 hidden states and
returns bfloat16 logits (its fast path). Both use two threads: ember's load gate (which runs
its kernels on one thread while other processes hold the cores) is held open, as torch has none.

    .venv-peers/bin/python benchmarks/bench_lm_head.py --batch 1 8 64 --dtypes float32 bfloat16
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import ml_dtypes
import numba
import numpy as np
from harness import (
    add_save_option,
    fixed_slot,
    interleave,
    machine_note,
    medians,
    ratio,
    recorded,
)

os.environ.setdefault("EMBER_COMPILE", "sync")  # time compiled kernels, not the numpy fallback

THREADS = 2
K = 10


def ember_head(table: np.ndarray, batch: int, output: str) -> Callable[[], object]:
    import ember.nn as nn
    from ember.dtype import DType
    from ember.engine import InferenceSession
    from ember.graph import Graph, TensorType

    vocab, hidden = table.shape
    emb = nn.EmbeddingV2(vocab, hidden, DType.from_numpy(table.dtype), name="tokens")
    head = nn.LMHead(emb, output=output, k=K if output == "top_k" else None)
    with Graph("head", input_types=[TensorType(DType.float32, [batch, hidden])]) as g:
        result = head(g.inputs[0])
        g.output(*(result if isinstance(result, tuple) else (result,)))
    model = InferenceSession(num_threads=THREADS).load(g, {"tokens": table})
    states = np.random.default_rng(batch).standard_normal((batch, hidden)).astype(np.float32)
    return lambda: model.execute(states)


def torch_head(table: np.ndarray, batch: int, output: str) -> Callable[[], object]:
    import torch
    import torch.nn.functional as F

    if table.dtype == ml_dtypes.bfloat16:
        weight = torch.from_numpy(table.view(np.uint16)).view(torch.bfloat16)
    else:
        weight = torch.from_numpy(table)
    states = np.random.default_rng(batch).standard_normal((batch, table.shape[1]))
    states = torch.from_numpy(states.astype(np.float32)).to(weight.dtype)

    def logits():
        with torch.inference_mode():
            return F.linear(states, weight)

    def top_k():
        with torch.inference_mode():
            return torch.topk(F.linear(states, weight), K, dim=-1)

    return top_k if output == "top_k" else logits


def median_seconds(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Each call once to warm up, then ``repeats`` rounds of one call each, round-robin."""
    slots = {name: fixed_slot(call) for name, call in calls.items()}
    return medians(interleave(slots, repeats, warmup=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", type=int, default=128256)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--outputs", nargs="+", default=["logits", "top_k"])
    parser.add_argument("--repeats", type=int, default=9)
    add_save_option(parser, "bench_lm_head")
    args = parser.parse_args()
    with recorded(args.save):
        run(args)


def run(args: argparse.Namespace) -> None:
    """Times both heads for every dtype, output and batch, and prints one line each."""

    import torch

    from ember.engine.backends.native.kernels import launch

    launch.GATE = launch.LoadGate(THREADS, runnable=lambda: None)
    torch.set_num_threads(THREADS)
    numba.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    base = rng.standard_normal((args.vocab, args.hidden), dtype=np.float32)
    roofline = median_seconds({"sum": lambda: torch.from_numpy(base).sum()}, args.repeats)["sum"]
    print(
        f"LM head {args.vocab} x {args.hidden}, {THREADS} threads, median of {args.repeats} "
        f"interleaved calls. torch {torch.__version__}, numba {numba.__version__}.\n"
        + machine_note()
    )
    print(
        f"read roofline: torch.sum over the float32 table: {base.nbytes / roofline / 1e9:.1f} GB/s"
    )
    print(
        f"{'dtype':>8} {'output':>7} {'batch':>5} | {'ember ms':>9} {'GB/s':>6} | "
        f"{'torch ms':>9} {'GB/s':>6} | {'ember/torch':>11} | {'ember / roofline':>16}"
    )
    for dtype in args.dtypes:
        table = base if dtype == "float32" else base.astype(ml_dtypes.bfloat16)
        for output in args.outputs:
            for batch in args.batch:
                seconds = median_seconds(
                    {
                        "ember": ember_head(table, batch, output),
                        "torch": torch_head(table, batch, output),
                    },
                    args.repeats,
                )
                ember, peer = seconds["ember"], seconds["torch"]
                print(
                    f"{dtype:>8} {output:>7} {batch:>5} | {ember * 1e3:9.2f} "
                    f"{table.nbytes / ember / 1e9:6.1f} | {peer * 1e3:9.2f} "
                    f"{table.nbytes / peer / 1e9:6.1f} | {ratio(ember, peer):>11} | "
                    f"{(table.nbytes / ember) / (base.nbytes / roofline):16.2f}"
                )
        del table


if __name__ == "__main__":
    main()
