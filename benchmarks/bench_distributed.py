"""A vocabulary-parallel lookup served by a job of several processes, its time split into the
local lookup and the exchange, the bytes the exchange moves, and gloo's own all-gather of the
same bytes through torch.distributed.

    ember launch -n 2 --cpu-devices 1 benchmarks/bench_distributed.py
    .venv-peers/bin/ember launch -n 2 --cpu-devices 1 benchmarks/bench_distributed.py  # + torch

Every process holds its CPU devices' shards of a 128256 x 1024 float32 table (memory-mapped
from one .npy file) and executes the same 8192 random ids. Reported by process 0, medians of
turns taken in order (execute, local part, torch): the execute; the local part alone (each
device gathering the rows it owns, the same jitted shard_map without its collective); their
difference, the exchange; the bytes the exchange moved against a ring all-reduce of masked
full-size partials; and, where torch is importable, `all_gather_into_tensor` on a gloo group
of the same processes, each sending the block its devices send (into an output allocated
once), and the exchange over it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

import ember.distributed as dist
import ember.nn as nn
from ember.distributed.runtime import ENV_COORDINATOR
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import DeviceRef, Graph, TensorType


def medians(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each call, taking turns (every process runs the same sequence)."""
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def torch_all_gather(rows: int, hidden: int, rank: int, world: int) -> Callable[[], object]:
    """gloo's all-gather of `rows` float32 rows from each process, on a torch group beside
    ember's (the coordinator's host, its port + 1)."""
    import torch
    import torch.distributed as tdist

    host, port = os.environ.get(ENV_COORDINATOR, "127.0.0.1:29500").rsplit(":", 1)
    tdist.init_process_group(
        "gloo", init_method=f"tcp://{host}:{int(port) + 1}", rank=rank, world_size=world
    )
    block = torch.ones(rows, hidden)
    received = torch.empty(world * rows, hidden)
    return lambda: tdist.all_gather_into_tensor(received, block)


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
    calls = {
        "execute": lambda: model.execute(ids),
        "local": lambda: local(placed, sharded.table).block_until_ready(),
    }
    world = dist.process_count()
    if importlib.util.find_spec("torch") is not None:
        per_process = rows.shape[1] * len(devices) // world  # the rows each process sends
        calls["torch"] = torch_all_gather(per_process, args.hidden, rank, world)
    med = medians(calls, args.repeats)
    n, out_bytes = len(devices), ids.size * args.hidden * 4
    allreduce = 2 * (n - 1) * out_bytes
    exchange = med["execute"] - med["local"]
    if rank == 0:
        print(
            f"{world} processes, {n} devices, {args.vocab} x {args.hidden} "
            f"float32, {args.tokens} ids; medians of {args.repeats} turns, shared machine"
        )
        print(
            "| execute | local lookup | exchange | bytes moved | x masked all-reduce "
            "| gloo all_gather (torch) | exchange / gloo |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|")
        gloo = med.get("torch")
        peer = "| n/a | n/a |"
        if gloo is not None:
            peer = f"| {gloo * 1e3:.1f} ms | {exchange / gloo:.2f} |"
        print(
            f"| {med['execute'] * 1e3:.1f} ms | {med['local'] * 1e3:.1f} ms | "
            f"{exchange * 1e3:.1f} ms | {moved / 2**20:.0f} MiB | {moved / allreduce:.3f} {peer}"
        )
    dist.shutdown()


if __name__ == "__main__":
    main()
