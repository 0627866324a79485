"""Fused gather + dequantize of each registry block format against a float32 row gather.

For each format (every one of ``ember.quant.FORMATS`` unless named) a Llama-3 sized table
(128256 x 4096 values) is gathered at 8192 random ids into float32 with
``gather_dequantize(..., parallel=True)``, interleaved round-robin with ``gather_rows`` of a
float32 table of the same shape; prints a markdown table of median seconds per call, GB/s of
output written and the ratio to float32 (1.0 = as fast).

Table contents follow ``ember.quant.samples.sample_table``: standard normal data quantized
where the format quantizes, else random blocks whose values are all finite. Only ``--unique``
distinct rows are generated (quantizing or filtering 128256 rows takes minutes); they are
tiled to the full row count, so the memory the ids reach is that of the full table.

    .venv/bin/python benchmarks/bench_formats.py [--rows 128256] [--reps 9] [FORMAT ...]
"""

import argparse
import itertools

import numba
import numpy as np
from harness import add_save_option, fixed_slot, interleave, machine_note, medians, recorded

from ember.engine.backends.native.kernels.dequantize_gather import gather_dequantize
from ember.engine.backends.native.kernels.gather import gather_rows
from ember.engine.backends.native.kernels.out_of_range import ERROR as MODE_ERROR
from ember.quant import FORMATS, get_format
from ember.quant.samples import sample_table


def median_seconds(calls, reps, rng):
    """Median per-call time of each callable, interleaved (in a random order each round) so
    drifting load hits all alike; each timed call follows an untimed one of its own, so that it
    does not pay for the cache state another contender left."""
    slots = {name: fixed_slot(call, primed=True) for name, call in calls.items()}
    return medians(interleave(slots, reps, shuffle=rng))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "formats", nargs="*", type=get_format, default=list(FORMATS.values()), metavar="FORMAT"
    )
    parser.add_argument("--rows", type=int, default=128256)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--ids", type=int, default=8192)
    parser.add_argument("--unique", type=int, default=4096, help="distinct rows generated")
    parser.add_argument("--reps", type=int, default=9)
    add_save_option(parser, "bench_formats")
    args = parser.parse_args()
    with recorded(args.save):
        run(args)


def run(args: argparse.Namespace) -> None:
    """Times each format's fused lookup against the float32 gather; one table row each."""
    rng = np.random.default_rng(0)
    table32 = np.empty((args.rows, args.width), np.float32)
    table32[:] = rng.standard_normal(args.width).astype(np.float32)
    out = np.empty((args.ids, args.width), np.float32)
    out32 = np.empty_like(out)
    # Fresh ids each call, so that no call finds its rows cached by the one before.
    pool = itertools.cycle(rng.integers(0, args.rows, (16, args.ids)))

    print(machine_note())
    print(
        f"{args.rows} x {args.width} table ({args.unique} distinct rows tiled), {args.ids} ids, "
        f"float32 output, {numba.get_num_threads()} threads, median of {args.reps}"
    )
    print("| format | seconds | GB/s | float32 seconds | float32 GB/s | ratio |")
    print("|---|---|---|---|---|---|")
    for fmt in args.formats:
        name = fmt.name
        unique = sample_table(fmt, args.unique, args.width)
        table = np.resize(unique, (args.rows, unique.shape[1]))
        del unique

        def quant(table=table, name=name):
            assert gather_dequantize(name, table, next(pool), 0, MODE_ERROR, out, True) == -1

        def float32():
            assert gather_rows(table32, next(pool), 0, MODE_ERROR, out32, True) == -1

        quant()  # compile outside the timing
        seconds = median_seconds({"quant": quant, "float32": float32}, args.reps, rng)
        rate = out.nbytes / seconds["quant"] / 1e9
        rate32 = out32.nbytes / seconds["float32"] / 1e9
        print(
            f"| {name} | {seconds['quant']:.4f} | {rate:.1f} "
            f"| {seconds['float32']:.4f} | {rate32:.1f} | {rate / rate32:.2f}x |",
            flush=True,
        )
        del table


if __name__ == "__main__":
    main()
