"""The XLA backend against JAX itself: does ember's engine add overhead to a lookup?

For each token count, three contenders take turns on one table (round-robin, median seconds
per call): ember's `execute` on the xla backend, `jnp.take` inside a function jitted directly
(the floor: what a JAX user would write), and a device copy of the same bytes (a jitted slice
of as many contiguous rows: the bandwidth roofline). Ember's call includes its input checks
and the out-of-range check; every call ends with `block_until_ready()` on its results.

    python benchmarks/bench_xla.py --tokens 1 64 8192 --dtypes float32 bfloat16
    python benchmarks/bench_xla.py --platform gpu   # on a machine where JAX sees a GPU
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from embedding_tables import VOCAB
from harness import add_save_option, machine_note, ratio, recorded, round_robin, timed_slot

import ember.nn as nn
from ember.driver import CPU, Accelerator
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import DeviceRef, Graph, TensorType

DTYPES = {"float32": (np.float32, DType.float32), "bfloat16": (ml_dtypes.bfloat16, DType.bfloat16)}


def contenders(table: np.ndarray, dtype: DType, tokens: int, platform: str) -> dict:
    device = jax.devices(platform)[0]
    ref = DeviceRef.GPU() if platform == "gpu" else DeviceRef.CPU()
    emb = nn.EmbeddingV2(table.shape[0], table.shape[1], dtype, ref, name="t")
    with Graph("lookup", input_types=[TensorType(DType.int32, ["n"], ref)]) as g:
        g.output(emb(g.inputs[0]))
    session_devices = [CPU(), Accelerator()] if platform == "gpu" else [CPU()]
    model = InferenceSession(devices=session_devices, backend="xla").load(g, {"t": table})
    on_device = jax.device_put(table, device)
    take = jax.jit(lambda t, i: jnp.take(t, i, axis=0))
    copy = jax.jit(lambda t, s: jax.lax.dynamic_slice_in_dim(t, s, tokens, 0))
    rng = np.random.default_rng(tokens)
    pool = [rng.integers(0, table.shape[0], tokens).astype(np.int32) for _ in range(8)]
    starts = [int(s) for s in rng.integers(0, table.shape[0] - tokens, 8)]
    turn = iter(range(1 << 62))

    def ember_call():  # execute returns once dispatched, like JAX: wait for the values
        return [r._array.block_until_ready() for r in model.execute(pool[next(turn) % 8])]

    def take_call():
        return take(on_device, pool[next(turn) % 8]).block_until_ready()

    def copy_call():
        return copy(on_device, starts[next(turn) % 8]).block_until_ready()

    ids = pool[0]
    np.testing.assert_array_equal(model.execute(ids)[0].to_numpy(), table[ids])
    np.testing.assert_array_equal(np.asarray(take(on_device, ids)), table[ids])
    return {"ember xla execute": ember_call, "jnp.take in jit": take_call, "device copy": copy_call}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, nargs="+", default=[1, 64, 8192])
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=DTYPES)
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--platform", default="cpu", choices=["cpu", "gpu"])
    p.add_argument("--budget", type=float, default=3.0, help="seconds per configuration")
    add_save_option(p, "bench_xla")
    args = p.parse_args(argv)
    with recorded(args.save):
        run(args)


def run(args: argparse.Namespace) -> None:
    """Times the three contenders for every dtype and token count; one table row each."""
    print(machine_note())
    print(
        f"jax {jax.__version__}, {jax.devices(args.platform)[0].device_kind}, "
        f"table {VOCAB} x {args.hidden}"
    )
    print(
        "| tokens | dtype | ember xla | jnp.take in jit | ember / take | device copy | "
        "ember GB/s | x copy |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for dtype_name in args.dtypes:
        np_dtype, dtype = DTYPES[dtype_name]
        table = np.random.default_rng(0).standard_normal((VOCAB, args.hidden), np.float32)
        table = table.astype(np_dtype)
        for tokens in args.tokens:
            calls = contenders(table, dtype, tokens, args.platform)
            slots = {name: timed_slot(call) for name, call in calls.items()}
            med = round_robin(slots, args.budget, min_rounds=15)
            ember, take, copy = (med[k] for k in calls)
            out_bytes = tokens * args.hidden * table.itemsize
            print(
                f"| {tokens} | {dtype_name} | {ember * 1e6:.1f} µs | {take * 1e6:.1f} µs | "
                f"{ratio(ember, take)} | {copy * 1e6:.1f} µs | {out_bytes / ember / 1e9:.1f} | "
                f"{ratio(copy, ember)} |",
                flush=True,
            )
        del table
        time.sleep(0.1)


if __name__ == "__main__":
    main()
