"""One table served by a job of several processes, each holding only its shards' rows.

    ember launch -n 2 --cpu-devices 2 examples/vocab_parallel.py

On two machines, run on each (process 0's host as the coordinator):

    python examples/vocab_parallel.py --coordinator 10.0.0.1:9876 --num-processes 2 --rank R
"""

import argparse
import os
import tempfile

import numpy as np

import ember.distributed as dist
import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import DeviceRef, Graph, TensorType

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--coordinator")
parser.add_argument("--num-processes", type=int)
parser.add_argument("--rank", type=int)
parser.add_argument("--table", default=os.path.join(tempfile.gettempdir(), "ember_table.npy"))
args = parser.parse_args()
if args.num_processes is None and "EMBER_NUM_PROCESSES" not in os.environ:
    parser.error(
        "run it with `ember launch -n 2 examples/vocab_parallel.py`, or give "
        "--coordinator, --num-processes and --rank"
    )

dist.initialize(args.coordinator, args.num_processes, args.rank, local_cpu_devices=2)
devices = dist.devices()  # all processes' devices, global ids: CPU(0)..CPU(3)
V, H = 50_000, 256
if not os.path.exists(args.table):  # the same file on every host, written once
    table = np.random.default_rng(0).standard_normal((V, H), dtype=np.float32)
    np.save(args.table + f".{dist.process_index()}.npy", table)
    os.replace(args.table + f".{dist.process_index()}.npy", args.table)

layer = nn.VocabParallelEmbedding(
    V, H, DType.float32, devices=[DeviceRef.CPU(i) for i in range(len(devices))], name="tbl"
)
with Graph("vp", input_types=[TensorType(DType.int32, ["n"], DeviceRef.CPU(0))]) as g:
    g.output(*layer(g.inputs[0]))
weights = {"tbl": np.load(args.table, mmap_mode="r")}
model = InferenceSession(devices=devices).load(g, weights_registry=weights)
ids = np.array([0, 12_345, 49_999, 25_000], np.int32)  # every process passes the same ids
outs = model.execute(ids)  # it gets its own devices' results
same = all(np.array_equal(out.to_numpy(), weights["tbl"][ids]) for out in outs)
print(
    f"process {dist.process_index()}: {len(outs)} results on {[str(o.device) for o in outs]}, "
    f"equal to the unsharded lookup: {same}"
)
dist.shutdown()
