"""One process of a two-process job, for test_multiprocess.py: `python worker.py SCENARIO DIR`.

Prints one line per check ("ok ..." or "FAIL ...") and exits 0 only when all passed.
"""

import os
import resource
import sys
import time

import numpy as np

import ember.distributed as dist
import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.errors import OutOfRangeError, PeerLostError
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType
from ember.quant import get_format

SCENARIO, FOLDER = sys.argv[1], sys.argv[2]
TIMEOUT = float(os.environ.get("WORKER_TIMEOUT", "20"))
failures = []


def check(label, passed):
    os.write(
        1, (("ok " if passed else "FAIL ") + label + "\n").encode()
    )  # one write: no interleaving
    if not passed:
        failures.append(label)


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def model(table, ids_dtype, encoding=None, reduce="all"):
    devices = [DeviceRef.CPU(i) for i in range(len(dist.devices()))]
    vocab, width = table.shape
    dtype = DType.uint8 if encoding else DType.float32
    layer = nn.VocabParallelEmbedding(
        vocab, width, dtype, devices, encoding, name="tbl", reduce=reduce
    )
    with Graph("vp", input_types=[TensorType(ids_dtype, ["n"], DeviceRef.CPU(0))]) as g:
        g.output(*layer(g.inputs[0]))
    return InferenceSession(devices=dist.devices()).load(g, weights_registry={"tbl": table})


dist.initialize(local_cpu_devices=2, timeout=TIMEOUT)
rank = dist.process_index()
check("four global devices", [str(d) for d in dist.devices()] == [f"cpu:{i}" for i in range(4)])

if SCENARIO == "lookups":
    dense = np.load(os.path.join(FOLDER, "dense.npy"), mmap_mode="r")
    q4k = np.load(os.path.join(FOLDER, "q4k.npy"), mmap_mode="r")
    ids = np.random.default_rng(0).integers(0, dense.shape[0], 257)
    ids[:3] = [0, dense.shape[0] - 1, 750]
    for ids_dtype in (DType.int32, DType.int64):
        typed = ids.astype(ids_dtype.to_numpy())
        outs = model(dense, ids_dtype).execute(typed)
        check(
            f"float32 {np.dtype(ids_dtype.to_numpy())}: two results",
            [o.device.id for o in outs] == [2 * rank, 2 * rank + 1],
        )
        check(
            f"float32 {np.dtype(ids_dtype.to_numpy())}: equal numpy",
            all((o.to_numpy() == dense[typed]).all() for o in outs),
        )
    outs = model(q4k, DType.int32, QuantizationEncoding.Q4_K).execute(ids.astype(np.int32))
    want = get_format("q4_k").dequantize(np.asarray(q4k[ids]))
    check(
        "q4_k: equal gguf-exact reference",
        all(o.to_numpy().tobytes() == want.tobytes() for o in outs),
    )
    part = 64  # 256 ids over four devices
    outs = model(dense, DType.int32, reduce="scatter").execute(ids[:256].astype(np.int32))
    mine = [dense[ids[k * part : (k + 1) * part]] for k in (2 * rank, 2 * rank + 1)]
    check(
        "scatter: each device its slice",
        all((o.to_numpy() == m).all() for o, m in zip(outs, mine, strict=True)),
    )
    bad = model(dense, DType.int32)
    try:
        bad.execute(np.array([1, dense.shape[0]], np.int32))
        check("bad id raises", False)
    except OutOfRangeError as error:
        check("bad id raises", f"id {dense.shape[0]} at position (1,)" in str(error))

elif SCENARIO == "rss":
    table = np.load(os.path.join(FOLDER, "big.npy"), mmap_mode="r")
    before = rss_mb()
    outs = model(table, DType.int32).execute(np.arange(0, table.shape[0], 997, dtype=np.int32))
    grown = rss_mb() - before
    shards = table.nbytes / 2 / 2**20
    print(
        f"rss grew {grown:.0f} MB; this process's shards {shards:.0f} MB; table {2 * shards:.0f} MB"
    )
    check("rss grows by about the shards, not the table", grown <= shards + 300)

elif SCENARIO == "peer_dies":
    dense = np.load(os.path.join(FOLDER, "dense.npy"), mmap_mode="r")
    m = model(dense, DType.int32)
    m.execute(np.array([1, 2], np.int32))
    check("first exchange", True)
    if rank == 1:
        os._exit(0)  # dies without a word
    start = time.monotonic()
    try:
        m.execute(np.array([3, 4], np.int32))
        check("a dead peer is an error", False)
    except PeerLostError as error:
        waited = time.monotonic() - start
        check(f"a dead peer is an error within the timeout ({waited:.1f} s)", waited < TIMEOUT + 5)
        print(str(error)[:200])

dist.shutdown()
sys.exit(1 if failures else 0)
