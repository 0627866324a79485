"""A vocabulary-parallel lookup served by a job of several processes, its time split into the
local lookup and the exchange, and the bytes the exchange moves.

    ember launch -n 2 --cpu-devices 2 benchmarks/bench_distributed.py

Every process holds two CPU devices' shards of a 128256 x 1024 float32 table (memory-mapped
from one .npy file) and executes the same 8192 random ids. Reported by process 0: the median
execute; the median of the local part alone (each device gathering the rows it owns, the same
jitted shard_map without its collective); their difference, the exchange; and the bytes the
exchange moved against a ring all-reduce of masked full-size partials.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

import ember.distributed as dist
import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import DeviceRef, Graph, TensorType


def median_seconds(call, repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=128256)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--tokens", type=int, default=8192)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--table", default=os.path.join(tempfile.gettempdir(), "ember_bench_table.npy"))
    args = p.parse_args()
    dist.initialize(timeout=120)
    rank, devices = dist.process_index(), dist.devices()
    shape = (args.vocab, args.hidden)
    if rank == 0 and not os.path.exists(args.table):
        table = np.lib.format.open_memmap(args.table + ".part.npy", "w+", np.float32, shape)
        table[:] = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        table.flush()
        os.replace(args.table + ".part.npy", args.table)
    while not os.path.exists(args.table):
        time.sleep(0.1)
    table = np.load(args.table, mmap_mode="r")
    refs = [DeviceRef.CPU(i) for i in range(len(devices))]
    layer = nn.VocabParallelEmbedding(*shape, DType.float32, devices=refs, name="tbl")
    with Graph("vp", input_types=[TensorType(DType.int32, ["n"])]) as g:
        g.output(*layer(g.inputs[0]))
    model = InferenceSession(devices=devices).load(g, {"tbl": table})
    ids = np.random.default_rng(1).integers(0, args.vocab, args.tokens).astype(np.int32)
    outs = model.execute(ids)
    assert all(np.array_equal(o.to_numpy(), table[ids]) for o in outs)

    [sharded] = model._executable._memo.values()
    flat = ids.astype(np.int64)
    owner = np.searchsorted(sharded.ends, flat, side="right")
    before = sharded.exchanged_bytes
    rows, _ = sharded._gather_plan(flat, owner)
    moved = sharded.exchanged_bytes - before
    spec = PartitionSpec("shards")
    local = jax.jit(
        jax.shard_map(
            lambda r, block: jnp.take(block, r[0], axis=0)[None],
            mesh=sharded.mesh,
            in_specs=(spec, spec),
            out_specs=spec,
        )
    )
    placed = jax.make_array_from_callback(
        rows.shape, NamedSharding(sharded.mesh, spec), lambda index: rows[index]
    )
    total = median_seconds(lambda: model.execute(ids), args.repeats)
    alone = median_seconds(lambda: local(placed, sharded.table).block_until_ready(), args.repeats)
    n, out_bytes = len(devices), ids.size * args.hidden * 4
    allreduce = 2 * (n - 1) * out_bytes
    if rank == 0:
        print(
            f"{dist.process_count()} processes, {n} devices, {args.vocab} x {args.hidden} "
            f"float32, {args.tokens} ids"
        )
        print("| execute | local lookup | exchange | bytes moved | x masked all-reduce |")
        print("|---:|---:|---:|---:|---:|")
        print(
            f"| {total * 1e3:.1f} ms | {alone * 1e3:.1f} ms | {(total - alone) * 1e3:.1f} ms | "
            f"{moved / 2**20:.0f} MiB | {moved / allreduce:.3f} |"
        )
    dist.shutdown()


if __name__ == "__main__":
    main()
