"""Round-trip error of every registry format ember quantizes, on standard-normal data, as a
markdown table (the grid i-quants and NVFP4 decode only).

    .venv/bin/python benchmarks/quant_rmse.py [--rows 256] [--hidden 4096] [--seed 0]

The legacy formats, TQ1_0, TQ2_0 and MXFP4 quantize byte for byte as ggml's reference does; the
K-quant and IQ4 quantizers are ember's own.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ember.quant import FORMATS, row_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    x = np.random.default_rng(args.seed).standard_normal((args.rows, args.hidden))
    x = x.astype(np.float32)
    print(f"standard normal, {args.rows} x {args.hidden} values\n")
    print("| format | bits/value | RMSE | max abs error | quantize (s) |")
    print("|---|---:|---:|---:|---:|")
    quantizable = [fmt for fmt in FORMATS.values() if fmt.quantizable]
    order = sorted(quantizable, key=lambda f: row_bytes(f, args.hidden))
    for fmt in order:
        start = time.perf_counter()
        blocks = fmt.quantize(x)
        seconds = time.perf_counter() - start
        err = fmt.dequantize(blocks) - x
        bits = 8 * row_bytes(fmt, args.hidden) / args.hidden  # a rowwise row's scale and bias too
        rmse = np.sqrt(np.mean(np.square(err, dtype=np.float64)))
        print(f"| {fmt.name} | {bits:.4g} | {rmse:.5f} | {np.abs(err).max():.4f} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
