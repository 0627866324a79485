"""The tied LM head side by side: ember's `nn.LMHead` against torch's `F.linear` (and
`torch.topk` for the top-k mode), beside the read roofline, all in one process.

Every contender computes the logits of the same hidden states against one 128256 x 4096 table
(the Llama-3 vocabulary; `--vocab` for quicker runs), shared in memory by both (torch reads the
same bytes through `torch.from_numpy`). Contenders take turns round-robin and the median
seconds per call is reported; ratio = ember's time / torch's (below 1: ember faster). The
roofline is `torch.sum` over the float32 table: the rate at which two threads stream it.

Quantized tables (``--formats``, Q4_K, Q6_K and Q8_0 by default) are timed at ``--qbatch``
against MAX's ``ops.qmatmul`` (for the formats MAX takes: Q4_0, Q4_K, Q6_K), which runs in a
child process. MAX quantizes the activations to 8 bits; ember's default mode does not, and its
``int8_activations=True`` column (Q4_K, Q6_K) does. A
quantized table is the first 2048 rows quantized from standard normal values, repeated to the
full vocabulary. GB/s count stored bytes. Each side's peak resident memory is measured in a
fresh process: the table loaded from a file, then the model loaded and called once at the
largest batch; "added" is the peak less the resident bytes once the table was in memory.

ember takes float32 hidden states and returns float32 logits for either table dtype; torch's
`F.linear` needs one dtype, so for a bfloat16 table it multiplies bfloat16 hidden states and
returns bfloat16 logits (its fast path). Both use two threads: ember's load gate (which runs
its kernels on one thread while other processes hold the cores) is held open, as torch has none.

    .venv-peers/bin/python benchmarks/bench_lm_head.py --batch 1 8 64 --dtypes float32 bfloat16
    .venv-peers/bin/python benchmarks/bench_lm_head.py --dtypes --formats q4_k q6_k q8_0
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable

import ml_dtypes
import numba
import numpy as np
from contenders.max_qmatmul import MaxQmatmul, peak_rss, rss_now, states
from harness import (
    Slot,
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
SAMPLE_ROWS = 2048
MAX_FORMATS = ("q4_0", "q4_k", "q6_k")
"""The formats MAX 26.7's ``ops.qmatmul`` takes (besides GPTQ)."""


def ember_head(
    table: np.ndarray, batch: int, output: str, fmt: str | None = None, int8: bool = False
) -> Callable[[], object]:
    """ember's head over ``table`` (``fmt``'s uint8 blocks when given) at ``batch``, with
    8-bit activations when ``int8``."""
    import ember.nn as nn
    from ember.dtype import DType
    from ember.engine import InferenceSession
    from ember.graph import Graph, QuantizationEncoding, TensorType

    if fmt is None:
        vocab, hidden = table.shape
        emb = nn.EmbeddingV2(vocab, hidden, DType.from_numpy(table.dtype), name="tokens")
    else:
        encoding = QuantizationEncoding[fmt.upper()]
        vocab, hidden = table.shape[0], encoding.hidden_size(table.shape[1])
        emb = nn.EmbeddingV2(
            vocab, table.shape[1], DType.uint8, quantization_encoding=encoding, name="tokens"
        )
    head = nn.LMHead(emb, output=output, k=K if output == "top_k" else None, int8_activations=int8)
    with Graph("head", input_types=[TensorType(DType.float32, [batch, hidden])]) as g:
        result = head(g.inputs[0])
        g.output(*(result if isinstance(result, tuple) else (result,)))
    model = InferenceSession(num_threads=THREADS).load(g, {"tokens": table})
    x = states(batch, hidden)
    return lambda: model.execute(x)


def quantized_table(fmt: str, vocab: int, hidden: int) -> np.ndarray:
    """``vocab`` rows of ``fmt``: SAMPLE_ROWS quantized rows repeated (quantizing the whole
    vocabulary in numpy would take minutes; the kernels' speed does not depend on the values)."""
    from ember.quant.samples import sample_table

    sample = sample_table(fmt, min(SAMPLE_ROWS, vocab), hidden, seed=0)
    return np.ascontiguousarray(np.resize(sample, (vocab, sample.shape[1])))


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
    parser.add_argument("--dtypes", nargs="*", default=["float32", "bfloat16"])
    parser.add_argument("--formats", nargs="*", default=["q4_k", "q6_k", "q8_0"])
    parser.add_argument("--qbatch", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--memory-child", nargs=3, metavar=("FMT", "NPY", "BATCH"),
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--outputs", nargs="+", default=["logits", "top_k"])
    parser.add_argument("--repeats", type=int, default=9)
    add_save_option(parser, "bench_lm_head")
    args = parser.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return
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
    for fmt in args.formats:
        run_quantized(fmt, args, roofline_bytes_per_s=args.vocab * args.hidden * 4 / roofline)


def run_quantized(fmt: str, args: argparse.Namespace, roofline_bytes_per_s: float) -> None:
    """ember's quantized head against MAX's qmatmul at each batch, then both sides' memory."""
    table = quantized_table(fmt, args.vocab, args.hidden)
    peer = MaxQmatmul(fmt, table) if fmt in MAX_FORMATS else None
    try:
        memory = time_quantized(fmt, table, peer, args, roofline_bytes_per_s)
    finally:  # a stopped or failed child is ended on every path
        if peer is not None:
            peer.close()
    for side, (peak, base) in memory.items():
        if peak is None:
            print(f"  peak resident, {side}: not measured")
            continue
        print(
            f"  peak resident, {side}: {peak / 2**20:.0f} MiB "
            f"(added after the table was in memory: {(peak - base) / 2**20:.0f} MiB)"
        )


def time_quantized(
    fmt: str, table: np.ndarray, peer: MaxQmatmul | None, args, roofline_bytes_per_s: float
) -> dict[str, tuple[int | None, int | None]]:
    """Prints ember's times against MAX's (when ``peer`` runs) at each batch; returns each
    side's peak resident bytes and those before the call."""
    from ember.graph.ops.qmatmul import INT8_ACTIVATION_FORMATS

    note = "" if peer is None else f"; MAX load {peer.load_s:.1f} s" if peer.load_s else ""
    if peer is not None and peer.died:
        note = f"; MAX: {peer.died}"
    print(f"\n{fmt.upper()} ({table.nbytes / 1e6:.0f} MB stored){note}")
    print(
        f"{'format':>6} {'batch':>5} | {'ember ms':>9} {'GB/s':>6} | {'int8 ms':>9} | "
        f"{'MAX ms':>9} {'GB/s':>6} | {'ember/MAX':>9} {'int8/MAX':>8} | {'ember / roofline':>16}"
    )
    for batch in args.qbatch:
        slots = {"ember": fixed_slot(ember_head(table, batch, "logits", fmt))}
        if fmt in INT8_ACTIVATION_FORMATS:
            slots["int8"] = fixed_slot(ember_head(table, batch, "logits", fmt, int8=True))
        if peer is not None and not peer.died:
            slots["MAX"] = Slot(lambda batch=batch: peer.seconds(batch), 0.0)
        seconds = medians(interleave(slots, args.repeats, warmup=1))
        ember, int8, theirs = seconds["ember"], seconds.get("int8"), seconds.get("MAX")
        theirs_cells = (
            f"{theirs * 1e3:9.2f} {table.nbytes / theirs / 1e9:6.1f}"
            if theirs
            else f"{'—':>9} {'—':>6}"
        )
        int8_cell = f"{int8 * 1e3:9.2f}" if int8 else f"{'—':>9}"
        print(
            f"{fmt:>6} {batch:>5} | {ember * 1e3:9.2f} {table.nbytes / ember / 1e9:6.1f} | "
            f"{int8_cell} | {theirs_cells} | {ratio(ember, theirs):>9} "
            f"{ratio(int8, theirs):>8} | {table.nbytes / ember / roofline_bytes_per_s:16.2f}"
        )
    memory = {"ember": ember_memory(fmt, table, max(args.qbatch))}
    if peer is not None and not peer.died:
        memory["MAX"] = (peer.request(op="rss").get("peak"), peer.base_rss)
    return memory


def ember_memory(fmt: str, table: np.ndarray, batch: int) -> tuple[int | None, int | None]:
    """ember's peak resident bytes, and those with only the table loaded, in a fresh process."""
    with tempfile.NamedTemporaryFile(suffix=".npy") as file:
        np.save(file, table)
        file.flush()
        proc = subprocess.run(
            [sys.executable, __file__, "--memory-child", fmt, file.name, str(batch)],
            capture_output=True,
            text=True,
        )
    replies = [x for x in proc.stdout.splitlines() if x.startswith("@@ ")]
    if proc.returncode or not replies:
        return None, None
    reply = json.loads(replies[-1][3:])
    return reply["peak"], reply["base"]


def memory_child(fmt: str, table_path: str, batch: str) -> None:
    """Fresh process: load the table, note the peak, load and call ember's head, print both."""
    import ember.nn  # noqa: F401 (imported before the baseline, as MAX's child imports MAX)

    table = np.load(table_path)
    base = rss_now()
    call = ember_head(table, int(batch), "logits", fmt)
    call()
    print("@@ " + json.dumps({"peak": peak_rss(), "base": base}), flush=True)


if __name__ == "__main__":
    main()
