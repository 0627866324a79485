"""Native row-gather kernel against the machine's copy bandwidth and numpy.take.

Prints a markdown table of medians, in GB/s of output written: a Llama-3 sized table
(128256 x 4096), random ids, the output buffer reused across calls, two threads.

    .venv/bin/python benchmarks/gather_kernel.py [--rows 128256] [--reps 9]
"""

import argparse
import itertools
import time

import ml_dtypes
import numba
import numpy as np
from numba import njit, prange

from ember.engine.backends.native.kernels.compiled import device
from ember.engine.backends.native.kernels.gather import gather_rows
from ember.engine.backends.native.kernels.out_of_range import ERROR as MODE_ERROR


@njit(parallel=True)
def parallel_copy(src, dst):
    """The roofline: each thread's share becomes one large ``memcpy`` into a mapped buffer."""
    for i in prange(src.size):
        dst[i] = src[i]


@njit(parallel=True)
def touch(flat):
    """Read a byte of every page: a table left alone for seconds can be slow to read again here."""
    total = 0
    for page in prange(flat.size // 4096):
        total += flat[page * 4096]
    return total


def median_seconds(calls, reps, rng):
    """Median per-call time of each callable, interleaved so drifting load hits all alike.

    Each timed call follows an untimed one of its own: a call otherwise pays for the cache
    state another contender left (dirty lines to write back, or an output evicted).
    """
    samples = {name: [] for name in calls}
    for _ in range(reps):
        for name in rng.permutation(list(calls)):
            call = calls[name]
            call()
            start = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - start)
    return {name: float(np.median(s)) for name, s in samples.items()}


def repeat(call, times):
    def run():
        for _ in range(times):
            call()

    return run


def measure(table, n, reps, rng, roof):
    """GB/s of output of each contender for ``n`` random ids, and of the roofline copy."""
    out = np.empty((n, table.shape[1]), table.dtype)
    # Enough distinct ids that small lookups do not find their rows in the cache.
    sets = max(16, (1 << 16) // n)
    pool = itertools.cycle(rng.integers(0, table.shape[0], (sets, n)))

    def kernel(parallel, stream):
        def call():
            # Forces the choice gather_rows makes by output size; cheaper than a context manager.
            device.COPY_STREAM_MIN_BYTES = 0 if stream else 1 << 62
            assert gather_rows(table, next(pool), 0, MODE_ERROR, out, parallel) == -1

        return call

    calls = {
        "serial": kernel(False, False),
        "parallel": kernel(True, False),
        "nt": kernel(True, True),
        "take": lambda: np.take(table, next(pool), axis=0, out=out),
    }
    inner = max(1, (1 << 24) // out.nbytes)
    calls = {k: repeat(c, inner) for k, c in calls.items()}
    calls["roof"] = lambda: parallel_copy(*roof)
    touch(table.reshape(-1).view(np.uint8))
    saved = device.COPY_STREAM_MIN_BYTES
    try:
        seconds = median_seconds(calls, reps, rng)
    finally:
        device.COPY_STREAM_MIN_BYTES = saved
    rates = {k: inner * out.nbytes / s / 1e9 for k, s in seconds.items()}
    rates["roof"] = roof[0].nbytes / seconds["roof"] / 1e9
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=128256)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--ids", type=int, nargs="+", default=[1, 64, 512, 8192, 32768])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    numba.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    table32 = np.empty((args.rows, args.width), np.float32)
    table32[:] = rng.random(args.width, np.float32)
    # The bfloat16 table reuses the first half of the float32 one: same memory, half the bytes.
    table16 = table32.reshape(-1)[: table32.size // 2].view(ml_dtypes.bfloat16)
    tables = {"float32": table32, "bfloat16": table16.reshape(args.rows, args.width)}
    roof = np.ones(512 << 20, np.uint8), np.zeros(512 << 20, np.uint8)

    print(
        f"{args.rows} x {args.width} table, {numba.get_num_threads()} threads, GB/s of output "
        "(roofline: 512 MiB copy, measured alongside each row)"
    )
    print(
        "| dtype | ids | copy roofline | serial | parallel | parallel+NT | numpy.take "
        "| best kernel / roofline |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for dtype, table in tables.items():
        for n in args.ids:
            rate = measure(table, n, args.reps, rng, roof)
            best = max(rate["serial"], rate["parallel"], rate["nt"])
            print(
                f"| {dtype} | {n} | {rate['roof']:.1f} | {rate['serial']:.1f} "
                f"| {rate['parallel']:.1f} | {rate['nt']:.1f} | {rate['take']:.1f} "
                f"| {best / rate['roof']:.0%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
