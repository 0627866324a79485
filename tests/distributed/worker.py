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
from ember.engine.backends.xla.device_exchange import DeviceExchange
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


def tied_head(table, ids, k, encoding=None):
    """Each device's (logits, greedy id, top-k values, top-k ids, logsumexp) of the rows at
    `ids`, looked up and decoded by one vocabulary-parallel table; and the model."""
    devices = [DeviceRef.CPU(i) for i in range(len(dist.devices()))]
    dtype = DType.uint8 if encoding else DType.float32
    layer = nn.VocabParallelEmbedding(*table.shape, dtype, devices, encoding, name="tbl")
    with Graph("head", input_types=[TensorType(DType.int32, ["n"], DeviceRef.CPU(0))]) as g:
        hidden = layer(g.inputs[0])
        heads = [nn.LMHead(layer, output=o) for o in ("logits", "argmax", "logsumexp")]
        logits, greedy, lse = (head(hidden) for head in heads)
        top = nn.LMHead(layer, output="top_k", k=k)(hidden)
        per_device = zip(logits, greedy, top, lse, strict=True)
        g.output(*(v for lo, gr, (va, i), ls in per_device for v in (lo, gr, va, i, ls)))
    m = InferenceSession(devices=dist.devices()).load(g, weights_registry={"tbl": table})
    return m.execute(ids), m


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

elif SCENARIO == "head":
    ties = np.load(os.path.join(FOLDER, "ties.npy"), mmap_mode="r")
    q4k = np.load(os.path.join(FOLDER, "q4k.npy"), mmap_mode="r")
    ids = np.array([3, 500, 7, 1000, 250], np.int32)
    k = 6
    outs, m = tied_head(ties, ids, k)  # hidden states: the lookup's rows, on every device
    logits = np.asarray(ties[ids]) @ np.asarray(ties).T  # small integers: exact
    order = np.argsort(-logits, axis=-1, kind="stable")[:, :k]
    values = np.take_along_axis(logits, order, -1)
    lse = np.log(np.exp(logits.astype(np.float64)).sum(-1))
    mine = [[o.to_numpy() for o in outs[5 * d : 5 * d + 5]] for d in (0, 1)]  # this process's
    check("head: logits equal numpy", all((d[0] == logits).all() for d in mine))
    check("head: greedy ids equal numpy", all((d[1] == order[:, 0]).all() for d in mine))
    check(
        "head: top-k ids and values equal numpy (ties across shards)",
        all((d[2] == values).all() and (d[3] == order).all() for d in mine),
    )
    check("head: logsumexp near float64", all(np.allclose(d[4], lse, rtol=1e-6) for d in mine))
    exchanges = m._executable._memo.values()
    sent = sorted(e.exchanged_bytes for e in exchanges if isinstance(e, DeviceExchange))
    tokens = len(ids)
    check(
        "head: bytes exchanged (argmax, logsumexp, top-k, logits)",
        sent == [12 * tokens * 8, 12 * tokens * 8, 12 * tokens * k * 8, 12 * tokens * 251 * 4],
    )
    outs, _ = tied_head(q4k, ids, k, QuantizationEncoding.Q4_K)
    device = DeviceRef.CPU(2 * rank)
    emb = nn.EmbeddingV2(*q4k.shape, DType.uint8, device, QuantizationEncoding.Q4_K, "tbl")
    with Graph("ref", input_types=[TensorType(DType.float32, ["n", 256], device)]) as g:
        g.output(*nn.LMHead(emb, output="top_k", k=k)(g.inputs[0]))
    hidden = get_format("q4_k").dequantize(np.asarray(q4k[ids]))
    session = InferenceSession(devices=dist.devices())
    want = [o.to_numpy() for o in session.load(g, {"tbl": q4k}).execute(hidden)]
    check(
        "head: q4_k top-k equal the unsharded head's bits",
        all(
            outs[d * 5 + 2].to_numpy().tobytes() == want[0].tobytes()
            and (outs[d * 5 + 3].to_numpy() == want[1]).all()
            for d in (0, 1)
        ),
    )

elif SCENARIO == "bags":
    dense = np.load(os.path.join(FOLDER, "dense.npy"), mmap_mode="r")
    q4k = np.load(os.path.join(FOLDER, "q4k.npy"), mmap_mode="r")
    int8 = get_format("rowwise_int8").quantize(np.asarray(dense))
    weights = {"sum": dense, "max": dense, "q4k": q4k, "int8": int8}
    features = {"a": 0, "b": 1, "c": 2, "d": 3, "a again": 0}

    def bags(device):
        q4, i8 = QuantizationEncoding.Q4_K, QuantizationEncoding.ROWWISE_INT8
        return [
            nn.EmbeddingBag(1001, 64, DType.float32, device, name="sum", padding_idx=0),
            nn.EmbeddingBag(1001, 64, DType.float32, device, name="max", mode="max"),
            nn.EmbeddingBag(1001, 144, DType.uint8, device, q4, "q4k", mode="mean"),
            nn.EmbeddingBag(1001, 72, DType.uint8, device, i8, "int8", mode="max"),
        ]

    def pooled(collection, device=None):
        types = [TensorType(DType.int64, ["n"], device), TensorType(DType.int32, [5, "b"], device)]
        with Graph("bags", input_types=types) as g:
            out = collection(*g.inputs)
            g.output(*(out if isinstance(out, list) else [out]))
        m = InferenceSession(devices=dist.devices()).load(g, weights)
        return [o.to_numpy() for o in m.execute(values, lengths) if o is not None], m

    rng = np.random.default_rng(1)
    batch = 9
    lengths = rng.integers(0, 9, (5, batch)).astype(np.int32)
    lengths[:, 4] = 0  # empty bags
    values = rng.integers(0, 1001, int(lengths.sum()))
    values[:2] = 0  # padding ids of feature "a"
    local = DeviceRef.CPU(2 * rank)
    [want], _ = pooled(nn.EmbeddingBagCollection(bags(local), features), local)
    devices = [DeviceRef.CPU(i) for i in range(4)]
    sharded = nn.EmbeddingBagCollection(
        bags(None), features, devices=devices, sharding=["row", "row", 3, "row"]
    )
    outs, m = pooled(sharded)
    check("bags: one result per device of this process", len(outs) == 2)
    exact = [c for f in ("b", "c", "d") for c in range(*sharded.columns[f])]
    check(
        "bags: max and the whole table equal the unsharded collection's bits",
        all((o[:, exact] == want[:, exact]).all() for o in outs),
    )
    check(
        "bags: row-split sums near the unsharded collection's",
        all(np.allclose(o, want, rtol=1e-5, atol=1e-5) for o in outs),
    )
    [exchange] = m._executable._memo.values()
    check(
        "bags: one partial vector per bag and device exchanged",
        exchange.exchanged_bytes == 4 * 3 * batch * (4 * 64 + 256) * 4,
    )

    def weighted(device, sharding=None):
        """A weighted collection: dense rows split over the devices, int8 rows on device 3."""
        i8 = QuantizationEncoding.ROWWISE_INT8
        summed = [
            nn.EmbeddingBag(1001, 64, DType.float32, device, name="sum", padding_idx=0),
            nn.EmbeddingBag(1001, 72, DType.uint8, device, i8, "int8"),
        ]
        collection = nn.EmbeddingBagCollection(
            summed, {"a": 0, "b": 1, "c": 0, "d": 1, "e": 0},
            devices=None if sharding is None else devices, sharding=sharding or "table",
        )  # fmt: skip
        types = [
            TensorType(DType.int64, ["n"], device),
            TensorType(DType.int32, [5, "b"], device),
            TensorType(DType.float32, ["n"], device),
        ]
        with Graph("weighted", input_types=types) as g:
            out = collection(*g.inputs)
            g.output(*(out if isinstance(out, list) else [out]))
        m = InferenceSession(devices=dist.devices()).load(g, weights)
        scale = rng.uniform(-2, 2, values.size).astype(np.float32)
        outs = m.execute(values, lengths, scale)
        return [o.to_numpy() for o in outs if o is not None]

    rng = np.random.default_rng(2)
    [want_weighted] = weighted(local)
    rng = np.random.default_rng(2)
    outs = weighted(None, ["row", 3])
    check(
        "bags: a weighted collection split over processes matches the unsharded one",
        len(outs) == 2
        and all(np.allclose(o, want_weighted, rtol=1e-5, atol=1e-5) for o in outs)
        and not np.allclose(want_weighted[:, :64], want[:, :64]),  # feature a, weighed
    )

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
