"""How far the XLA backend's quantized lookups are from the reference, on a given platform.

On CPU they are bit-exact (the tests assert it); on a GPU, XLA may fuse or reorder float
operations differently, so this reports, per format, how many values differ from
`ember.quant`'s reference decoder (itself bit-exact against `gguf.quants.dequantize`) and the
largest difference, absolute and in units of the reference value's last place.

    python benchmarks/xla_quant_diff.py --platform gpu
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

import ember.nn as nn
from ember.driver import CPU, Accelerator
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType
from ember.quant import FORMATS
from ember.quant.samples import sample_table


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--platform", default="cpu", choices=["cpu", "gpu"])
    p.add_argument("--rows", type=int, default=4096)
    p.add_argument("--hidden", type=int, default=1024)
    args = p.parse_args(argv)
    ref = DeviceRef.GPU() if args.platform == "gpu" else DeviceRef.CPU()
    devices = [CPU(), Accelerator()] if args.platform == "gpu" else [CPU()]
    session = InferenceSession(devices=devices, backend="xla")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, args.rows, 8192).astype(np.int32)
    print(f"jax {jax.__version__} on {jax.devices(args.platform)[0].device_kind}")
    print("| format | values differing | max abs diff | max ulps |")
    print("|---|---:|---:|---:|")
    for name, fmt in FORMATS.items():
        table = sample_table(fmt, args.rows, args.hidden)
        encoding = QuantizationEncoding[name.upper()]
        emb = nn.EmbeddingV2(args.rows, table.shape[1], DType.uint8, ref, encoding, name="q")
        with Graph("q", input_types=[TensorType(DType.int32, ["n"], ref)]) as g:
            g.output(emb(g.inputs[0]))
        got = session.load(g, {"q": table}).execute(ids)[0].to_numpy()
        want = fmt.dequantize(table[ids])
        differ = got.view(np.uint32) != want.view(np.uint32)
        diff = np.abs(got.astype(np.float64) - want)
        ulps = diff / np.spacing(np.abs(want)).astype(np.float64)
        print(
            f"| {name} | {int(differ.sum())} of {differ.size} | {diff.max():.3g} | "
            f"{ulps.max():.3g} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
