"""Embedding lookups side by side: ember against numpy, torch and MAX, and the copy roofline.

Every contender gathers rows of one 128256 x 4096 table (the Llama-3 vocabulary) for the same
random int32 ids (a pool of id sets, a fresh set each call; with ``--ids repeated``, the same set
every call, whose rows stay in the cache, as a decode loop's repeated tokens or a warm loop's).
Contenders take turns round-robin
(A, B, C, A, B, C, ...) and the median seconds per call is reported, next to the machine's
two-thread copy bandwidth. MAX is a peer
measured here, never a dependency; its quantized lookups run in a child process, so a crash
becomes a table row instead of ending the run.

    python benchmarks/bench_embedding.py --tokens 1 64 8192 --dtypes float32 --quant q4_k q4_0
    python benchmarks/bench_embedding.py --tokens 1 64 512 --dtypes float32 bfloat16 \
        --ids fresh repeated    # small calls, beside torch, torch's ids given to ember too

Quantized tables: 2048 random normal rows, quantized by ``gguf.quants.quantize`` where it can
(the legacy formats) and by ``ember.quant`` otherwise (the K formats, which gguf cannot
quantize), tiled over the vocabulary. Results are checked bit-exact against
``gguf.quants.dequantize`` on up to 256 sampled rows.

Load times: MAX's and ember's float32 (and ember's Q4_K) graph loaded in fresh processes, with
an empty compile cache and then a warm one (``benchmarks/bench_load.py`` for ember's).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import itertools
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import ml_dtypes
import numba
import numpy as np

from ember.quant import FORMATS

# Timed calls run ember's compiled kernels: where ember compiles in the background, lookups go
# through numpy until their kernel is ready, which belongs to load time (see bench_load.py).
os.environ.setdefault("EMBER_COMPILE", "sync")

VOCAB, HIDDEN = 128256, 4096
THREADS = 2
QUANT_FORMATS = tuple(FORMATS)
EMBER_MISSING = "ember engine not available"


@dataclass
class Contender:
    """A way to look rows up: ``bind(pool)`` returns a call looking up the pool's next id set.

    ``check(ids, out)`` returns '' when ``out`` (of the first set, ``ids``) is right, else what
    is wrong.
    """

    name: str
    bind: Callable[[np.ndarray], Callable[[], object]]
    to_numpy: Callable[[object], np.ndarray] = np.asarray
    check: Callable[[np.ndarray, np.ndarray], str] | None = None


@dataclass
class Slot:
    """One contender's turn in a round: ``run()`` returns seconds per call; ``cost`` its length."""

    run: Callable[[], float]
    cost: float


@dataclass
class Row:
    """One line of the report; ``seconds`` is None when the contender failed (see ``note``)."""

    tokens: int
    dtype: str
    contender: str
    seconds: float | None
    out_bytes: int
    moved_bytes: int
    note: str = ""
    ids: str = "fresh"


def id_pool(n: int, ids: str = "fresh") -> list[np.ndarray]:
    """Sets of ``n`` random ids that every contender (and a MAX child process) cycles through.

    Fresh: each call looks up the next set, and one pass over the pool touches about VOCAB rows,
    so small lookups read rows from wherever the table is, not from a cache the last call
    warmed. Repeated: one set, looked up again each call.
    """
    sets = 1 if ids == "repeated" else max(2, -(-VOCAB // n))
    return list(np.random.default_rng(n).integers(0, VOCAB, (sets, n), dtype=np.int32))


def cycling(call: Callable, pool: list) -> Callable[[], object]:
    """A call that applies ``call`` to the next item of ``pool`` each time, starting at pool[0]."""
    items = itertools.cycle(pool)
    return lambda: call(next(items))


def random_table(dtype: np.dtype, seed: int = 0) -> np.ndarray:
    """A VOCAB x HIDDEN table of standard normal values, filled in chunks to bound temporaries."""
    rng = np.random.default_rng(seed)
    table = np.empty((VOCAB, HIDDEN), dtype)
    for start in range(0, VOCAB, 8192):
        chunk = table[start : start + 8192]
        chunk[...] = rng.standard_normal(chunk.shape, dtype=np.float32).astype(dtype)
    return table


def ggml_type(fmt: str):
    """The gguf package's quantization type for a format name such as ``q4_k``."""
    import gguf

    return gguf.GGMLQuantizationType[fmt.upper()]


def row_bytes(fmt: str) -> int:
    """Bytes of one quantized row of HIDDEN values."""
    import gguf

    elements, block = gguf.GGML_QUANT_SIZES[ggml_type(fmt)]
    return HIDDEN // elements * block


def quant_table(fmt: str, seed: int = 0) -> np.ndarray:
    """A (VOCAB, row_bytes) uint8 table in ``fmt``: gguf quantizes where it can, else ember."""
    import gguf

    sample = np.random.default_rng(seed).standard_normal((2048, HIDDEN), dtype=np.float32)
    try:
        blocks = gguf.quants.quantize(sample, ggml_type(fmt))
    except NotImplementedError:
        blocks = FORMATS[fmt].quantize(sample)
    return np.resize(blocks, (VOCAB, row_bytes(fmt)))


def check_quant(out: np.ndarray, table: np.ndarray, ids: np.ndarray, fmt: str) -> str:
    """Compares sampled rows of a quantized lookup with gguf's dequantize bit for bit (``==``
    would pass -0.0 for 0.0 and fail a NaN the lookup got right); '' when exact."""
    import gguf

    if out.shape != (ids.size, HIDDEN):
        return f"wrong shape {out.shape}"
    picks = np.unique(np.linspace(0, ids.size - 1, min(ids.size, 256)).astype(np.int64))
    ref = gguf.quants.dequantize(table[ids[picks]], ggml_type(fmt))
    ref = np.ascontiguousarray(ref, np.float32)
    got = np.ascontiguousarray(out[picks], np.float32)
    differ = got.view(np.uint32) != ref.view(np.uint32)
    bad = differ.any(axis=1)
    if not bad.any():
        return ""
    row = int(np.argmax(bad))
    col = int(np.argmax(differ[row]))
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(got[differ].astype(np.float64) - ref[differ])
    finite = err[np.isfinite(err)]
    worst = f"max |err| {finite.max():.3g}" if finite.size else "no finite |err|"
    bits = [
        f"{float(x)!r} ({int(x.view(np.uint32)):#010x})" for x in (got[row, col], ref[row, col])
    ]
    return (
        f"WRONG VALUES: {int(bad.sum())}/{picks.size} sampled rows differ in their bits "
        f"({int(differ.sum())} values, {worst}); first at id {int(ids[picks[row]])}, "
        f"column {col}: got {bits[0]}, want {bits[1]}"
    )


def same_bytes(got: np.ndarray, ref: np.ndarray) -> bool:
    """True when two arrays have the same shape, item size and bytes (bf16 in any guise)."""
    return (
        got.shape == ref.shape
        and got.dtype.itemsize == ref.dtype.itemsize
        and np.array_equal(
            np.ascontiguousarray(got).view(np.uint8), np.ascontiguousarray(ref).view(np.uint8)
        )
    )


def timed_slot(call: Callable[[], object], target: float = 1e-3) -> Slot:
    """A round-robin turn of enough back-to-back calls to last about ``target`` seconds.

    Each call's result is dropped before the next call starts (ember's results go back to a
    buffer pool).
    """
    est = min(_time_calls(call, 1) for _ in range(3))
    inner = int(min(1000, max(1, target / max(est, 1e-9))))
    return Slot(lambda: _time_calls(call, inner), est * inner)


def _time_calls(call: Callable[[], object], inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        call()
    return (time.perf_counter() - start) / inner


def round_robin(slots: dict[str, Slot], budget: float, min_rounds: int) -> dict[str, float]:
    """Median seconds per call of each slot, taking turns A, B, C, A, B, C, ... .

    A 1 ms pause between turns lets runtimes whose idle worker threads spin (OpenMP) park them
    before the next contender starts.
    """
    per_round = sum(s.cost for s in slots.values()) + 1e-3 * len(slots)
    rounds = int(min(200, max(min_rounds, budget / max(per_round, 1e-9))))
    samples: dict[str, list[float]] = {name: [] for name in slots}
    for _ in range(rounds):
        for name, slot in slots.items():
            samples[name].append(slot.run())
            time.sleep(1e-3)
    return {name: float(np.median(v)) for name, v in samples.items()}


@numba.njit(parallel=True, cache=True)
def _prange_copy(src, dst):
    for i in numba.prange(src.size):
        dst[i] = src[i]


def copy_roofline(repeats: int, mib: int = 256) -> list[float]:
    """Seconds per copy of ``mib`` MiB into a reused buffer by a two-thread numba prange loop."""
    numba.set_num_threads(min(THREADS, numba.config.NUMBA_NUM_THREADS))
    src = np.ones(mib << 17, np.uint64)
    dst = np.empty_like(src)
    _prange_copy(src, dst)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _prange_copy(src, dst)
        times.append(time.perf_counter() - start)
    return times


def numpy_contender(table: np.ndarray) -> Contender:
    """``numpy.take(table, ids, axis=0, out=buf)`` into a buffer reused across calls."""

    def bind(pool):
        buf = np.empty((pool[0].size, table.shape[1]), table.dtype)
        return cycling(lambda ids: np.take(table, ids, axis=0, out=buf), pool)

    return Contender("numpy take(out=)", bind)


def torch_contenders(table: np.ndarray) -> list[Contender]:
    """``F.embedding`` (fresh output each call) and ``index_select(out=)`` on a zero-copy view."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(THREADS)
    if table.dtype == ml_dtypes.bfloat16:
        weight = torch.from_numpy(table.view(np.int16)).view(torch.bfloat16)
    else:
        weight = torch.from_numpy(table)

    def as_numpy(out):
        return out.view(torch.int16).numpy() if out.dtype == torch.bfloat16 else out.numpy()

    def embedding(pool):
        return cycling(lambda ids: F.embedding(ids, weight), [torch.from_numpy(x) for x in pool])

    def index_select(pool):
        buf = torch.empty((pool[0].size, weight.shape[1]), dtype=weight.dtype)
        return cycling(
            lambda ids: torch.index_select(weight, 0, ids, out=buf),
            [torch.from_numpy(x) for x in pool],
        )

    return [
        Contender("torch embedding", embedding, as_numpy),
        Contender("torch index_select(out=)", index_select, as_numpy),
    ]


def max_graph(name: str, dtype: str, fmt: str | None = None):
    """MAX's ``Embedding`` over a VOCAB-row table in a graph of int32 ids ``[n]`` on CPU.

    A quantized table is uint8 ``(VOCAB, row_bytes)`` with a ``quantization_encoding``: MAX's
    layer gathers the byte rows and calls ``ops.dequantize`` on them.
    """
    from max.dtype import DType
    from max.graph import DeviceRef, Graph, TensorType
    from max.graph.quantization import QuantizationEncoding
    from max.nn import Embedding

    encoding = None
    if fmt is not None:
        encoding = QuantizationEncoding.__members__.get(fmt.upper())
        if encoding is None:
            raise ValueError(f"MAX has no QuantizationEncoding.{fmt.upper()}")
    hidden = HIDDEN if fmt is None else row_bytes(fmt)
    layer = Embedding(
        vocab_size=VOCAB,
        hidden_dim=hidden,
        dtype=DType[dtype],
        device=DeviceRef.CPU(),
        quantization_encoding=encoding,
        name=name,
    )
    with Graph("embed", input_types=[TensorType(DType.int32, ["n"], DeviceRef.CPU())]) as graph:
        graph.output(layer(graph.inputs[0]))
    return graph


def max_weight(table: np.ndarray):
    """A MAX buffer viewing ``table`` (numpy's DLPack cannot carry ml_dtypes' bfloat16)."""
    from max.driver import Buffer
    from max.dtype import DType

    if table.dtype == ml_dtypes.bfloat16:
        return Buffer.from_numpy(table.view(np.uint16)).view(DType.bfloat16)
    return Buffer.from_numpy(table)


def max_session():
    """A MAX session on the CPU, with MAX's default thread count (the machine's cores).

    ``InferenceSession(num_threads=2)`` aborts MAX 26.7 ("LLVM ERROR: ... requesting different
    options to those used to create the existing CPUDevice"), so no thread count is passed.
    """
    from max.driver import CPU
    from max.engine import InferenceSession

    return InferenceSession(devices=[CPU()])


def max_contender(table: np.ndarray, loads: list[str]) -> Contender:
    """MAX's execute of a loaded embedding model (its load time goes into ``loads``)."""
    from max.dtype import DType

    dtype = "bfloat16" if table.dtype == ml_dtypes.bfloat16 else str(table.dtype)
    graph = max_graph("tok", dtype)
    start = time.perf_counter()
    model = max_session().load(graph, weights_registry={"tok": max_weight(table)})
    loads.append(f"MAX load ({dtype}, in-process): {time.perf_counter() - start:.2f} s")

    def as_numpy(out):
        return out.view(DType.uint16).to_numpy() if out.dtype == DType.bfloat16 else out.to_numpy()

    return Contender("MAX", lambda pool: cycling(lambda ids: model.execute(ids)[0], pool), as_numpy)


def ember_contender(table: np.ndarray, name: str, fmt: str | None = None) -> Contender:
    """ember's ``execute(ids)``, a fresh result per call."""
    model = ember_model(table, fmt)
    # Each result is dropped before the next call: ember's results go back to a buffer pool.
    return Contender(
        name,
        lambda pool: cycling(lambda ids: model.execute(ids)[0], pool),
        lambda out: out.to_numpy(),
    )


def ember_model(table: np.ndarray, fmt: str | None = None):
    """ember through its public API, as DESIGN.md's "What a user does" shows.

    A quantized table is declared as MAX declares it: uint8 ``(VOCAB, row_bytes)`` plus a
    ``quantization_encoding``.
    """
    import ember.nn as enn
    from ember.dtype import DType
    from ember.engine import InferenceSession
    from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType

    dtype = "bfloat16" if table.dtype == ml_dtypes.bfloat16 else str(table.dtype)
    emb = enn.EmbeddingV2(
        vocab_size=VOCAB,
        hidden_dim=table.shape[1],
        dtype=DType[dtype],
        device=DeviceRef.CPU(),
        quantization_encoding=None if fmt is None else QuantizationEncoding[fmt.upper()],
        name="token_embeddings",
    )
    with Graph("embed", input_types=[TensorType(DType.int32, ["n"], DeviceRef.CPU())]) as g:
        g.output(emb(g.inputs[0]))
    return InferenceSession(num_threads=THREADS).load(
        g, weights_registry={"token_embeddings": table}
    )


def ember_torch_ids_contender(table: np.ndarray) -> Contender:
    """ember's ``execute(ids)`` given torch tensors as ids, as a torch user calls it."""
    import torch

    model = ember_model(table)

    def bind(pool):
        return cycling(lambda ids: model.execute(ids)[0], [torch.from_numpy(x) for x in pool])

    return Contender("ember execute(torch ids)", bind, lambda out: out.to_numpy())


def ember_out_contender(table: np.ndarray) -> Contender:
    """ember's ``execute(ids, out=buf)`` into a buffer reused across calls, beside torch's
    ``index_select(out=)``."""
    model = ember_model(table)

    def bind(pool):
        buf = np.empty((pool[0].size, table.shape[1]), table.dtype)
        return cycling(lambda ids: model.execute(ids, out=buf)[0], pool)

    return Contender("ember execute(out=)", bind, lambda out: out.to_numpy())


class MaxWorker:
    """MAX's quantized lookup in a child process: a crash there becomes a note, not our end.

    ``died`` holds why the child is gone (a signal, or the error that ended it), else None.
    """

    def __init__(self, fmt: str, table_path: str):
        self.died: str | None = None
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by close())
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--max-worker", fmt, table_path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=dict(os.environ),  # MAX's load setenv()s PYTHONEXECUTABLE; os.environ lacks it
        )
        self.hello = self._receive()

    def request(self, **message) -> dict:
        """Sends one command and returns the reply ({} once the child is gone)."""
        if self.died is None:
            try:
                self.proc.stdin.write(json.dumps(message) + "\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                self._receive()
        return {} if self.died else self._receive()

    def _receive(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("@@ "):
                reply = json.loads(line[3:])
                self.died = reply.get("error")
                return reply
        code = self.proc.wait()
        self.stderr.seek(0)
        lines = [x for x in self.stderr.read().splitlines() if x.strip()]
        if code < 0:
            self.died = f"crashed ({signal.Signals(-code).name})"
        else:
            self.died = f"exited {code}: {lines[-1] if lines else ''}"
        return {}

    def close(self) -> None:
        """Ends the child (if still alive) and waits for it."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()
        self.stderr.close()


def max_worker_main(fmt: str, table_path: str) -> None:
    """Child side of MaxWorker: load, then answer "check n" and "time" commands on stdin."""

    def send(**reply):
        print("@@ " + json.dumps(reply), flush=True)

    table = np.load(table_path)
    try:
        graph = max_graph("tok", "uint8", fmt)
        start = time.perf_counter()
        model = max_session().load(graph, weights_registry={"tok": table})
    except Exception as exc:
        send(error=first_line(exc))
        return
    send(load_s=time.perf_counter() - start)
    slot = None
    for line in sys.stdin:
        message = json.loads(line)
        if message["op"] == "check":
            pool = id_pool(message["n"])
            call = cycling(lambda ids: model.execute(ids)[0], pool)
            out = call()
            note = check_quant(out.to_numpy(), table, pool[0], fmt)
            del out
            slot = timed_slot(call)
            send(note=note, cost=slot.cost)
        else:
            send(t=slot.run())


def max_load_main() -> None:
    """Child: import MAX, build the float32 embedding graph and load it; print the seconds."""
    start = time.perf_counter()
    import max.engine  # noqa: F401

    imported = time.perf_counter()
    graph = max_graph("tok", "float32")
    built = time.perf_counter()
    max_session().load(graph, weights_registry={"tok": np.empty((VOCAB, HIDDEN), np.float32)})
    loaded = time.perf_counter()
    print(
        "@@ "
        + json.dumps(
            {"import_s": imported - start, "build_s": built - imported, "load_s": loaded - built}
        ),
        flush=True,
    )


def max_load_times() -> list[str]:
    """MAX's load of the float32 graph in fresh processes: empty compile cache, then warm."""
    lines = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, XDG_CACHE_HOME=cache)
        for label in ("cold cache", "warm cache"):
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, __file__, "--max-load"], env=env, capture_output=True, text=True
            )
            wall = time.perf_counter() - start
            replies = [x for x in proc.stdout.splitlines() if x.startswith("@@ ")]
            if proc.returncode or not replies:
                lines.append(f"MAX load, fresh process, {label}: failed ({proc.returncode})")
                continue
            r = json.loads(replies[-1][3:])
            lines.append(
                f"MAX load, fresh process, {label}: load {r['load_s']:.2f} s "
                f"(import {r['import_s']:.2f} s, graph build {r['build_s']:.2f} s, "
                f"process wall {wall:.1f} s)"
            )
    return lines


def ember_load_times() -> list[str]:
    """ember's load of the float32 and Q4_K graphs in fresh processes, empty numba cache then
    warm, to set beside MAX's (bench_load.py runs the children, and a table over more runs)."""
    from bench_load import summary_lines  # a sibling script: benchmarks/ is sys.path[0]

    return summary_lines(VOCAB, HIDDEN, runs=1)


def measure_group(
    contenders: list[Contender],
    n: int,
    budget: float,
    min_rounds: int,
    remote: dict[str, MaxWorker] | None = None,
    ids: str = "fresh",
) -> tuple[dict[str, float | None], dict[str, str]]:
    """Checks each contender on ``n`` ids once, then times those that ran, round-robin.

    Returns medians by name and notes by name (why it failed, or what came out wrong).
    """
    slots: dict[str, Slot] = {}
    notes: dict[str, str] = {}
    pool = id_pool(n, ids)
    for c in contenders:
        try:
            call = c.bind(pool)
            out = call()
            notes[c.name] = c.check(pool[0], c.to_numpy(out))
            del out
            slots[c.name] = timed_slot(call)
        except Exception as exc:
            notes[c.name] = first_line(exc)
    for name, worker in (remote or {}).items():
        reply = worker.request(op="check", n=n)
        notes[name] = worker.died or reply["note"]
        if not worker.died:
            slots[name] = Slot(
                lambda w=worker: w.request(op="time").get("t", float("nan")), reply["cost"]
            )
    medians: dict[str, float | None] = dict(round_robin(slots, budget, min_rounds))
    for name, worker in (remote or {}).items():
        if worker.died and name in medians:
            notes[name], medians[name] = worker.died, None
    return medians, notes


def first_line(exc: BaseException) -> str:
    """``Type: message`` of an exception, first line only."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def build(
    makers: dict[str, Callable[[], list[Contender]]],
) -> tuple[list[Contender], dict[str, str]]:
    """Builds the contenders; a missing package is printed, any other failure kept as a note."""
    built, failed = [], {}
    for name, make in makers.items():
        try:
            built += make()
        except ImportError as exc:
            print(EMBER_MISSING if name.startswith("ember") else f"{name}: {exc}", flush=True)
        except Exception as exc:
            failed[name] = first_line(exc)
    return built, failed


def run_dense(args, dtype: str, table: np.ndarray, roofline: list[float], loads: list[str]):
    """Rows for one dense dtype over every token count."""

    def exact(ids, out):
        return "" if same_bytes(out, np.take(table, ids, axis=0)) else "WRONG VALUES"

    makers = {"numpy": lambda: [numpy_contender(table)], "torch": lambda: torch_contenders(table)}
    if args.max:
        makers["MAX"] = lambda: [max_contender(table, loads)]
    makers["ember"] = lambda: [ember_contender(table, "ember"), ember_out_contender(table)]
    makers["torch ids"] = lambda: [ember_torch_ids_contender(table)]
    contenders, failed = build(makers)
    for c in contenders:
        c.check = exact
    rows = []
    for ids, n in itertools.product(args.ids, args.tokens):
        medians, notes = measure_group(contenders, n, args.budget, args.min_rounds, ids=ids)
        notes |= failed
        roofline += copy_roofline(2)
        nbytes = n * HIDDEN * table.itemsize
        for name in [c.name for c in contenders] + list(failed):
            rows.append(
                Row(n, dtype, name, medians.get(name), nbytes, 2 * nbytes, notes[name], ids)
            )
        print(f"  done {dtype} x {n} tokens, {ids} ids", flush=True)
    return rows


def run_quant(args, fmt: str, dense32, roofline: list[float], loads: list[str]):
    """Rows for one quantized format: ember, MAX (in a child process), ember's float32 lookup.

    ``dense32`` is the float32 table, or None when ember is not installed.
    """
    table = quant_table(fmt)
    makers = {f"ember {fmt}": lambda: [ember_contender(table, f"ember {fmt}", fmt)]}
    if dense32 is not None:
        makers["ember float32"] = lambda: [ember_contender(dense32, "ember float32")]
    contenders, failed = build(makers)
    for c in contenders:
        if c.name == "ember float32":
            c.check = lambda ids, out: (
                "" if same_bytes(out, np.take(dense32, ids, axis=0)) else "WRONG VALUES"
            )
        else:
            c.check = lambda ids, out: check_quant(out, table, ids, fmt)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{fmt}.npy")
        np.save(path, table)
        worker = MaxWorker(fmt, path) if args.max else None
        if worker is not None and not worker.died:
            loads.append(f"MAX load ({fmt}, child process): {worker.hello['load_s']:.2f} s")
        for n in args.tokens:
            if worker is not None and worker.died and "load_s" in worker.hello:
                worker.close()
                worker = MaxWorker(fmt, path)  # the last count crashed it; try this one afresh
            remote = {f"MAX {fmt}": worker} if worker is not None else None
            medians, notes = measure_group(contenders, n, args.budget, args.min_rounds, remote)
            notes |= failed
            roofline += copy_roofline(2)
            out_bytes = n * HIDDEN * 4
            for name in [c.name for c in contenders] + list(remote or {}) + list(failed):
                read = n * (HIDDEN * 4 if name == "ember float32" else row_bytes(fmt))
                rows.append(
                    Row(n, fmt, name, medians.get(name), out_bytes, out_bytes + read, notes[name])
                )
            print(f"  done {fmt} x {n} tokens", flush=True)
        if worker is not None:
            worker.close()
    return rows


def report(rows: list[Row], copy_gbps: float) -> str:
    """The markdown table: per-call time, output GB/s, speed relative to MAX, % of roofline."""
    lines = [
        "| tokens | dtype | ids | contender | median per call | output GB/s | × MAX speed "
        "| % of roofline | note |",
        "|---:|---|---|---|---:|---:|---:|---:|---|",
    ]
    max_time = {
        (r.tokens, r.dtype, r.ids): r.seconds
        for r in rows
        if r.contender.startswith("MAX") and r.seconds is not None and not r.note
    }
    for r in rows:
        if r.seconds is None:
            cells = ["—", "—", "—", "—"]
        else:
            per_call = (
                f"{r.seconds * 1e6:.1f} µs" if r.tokens <= 64 else f"{r.seconds * 1e3:.2f} ms"
            )
            base = max_time.get((r.tokens, r.dtype, r.ids))
            cells = [
                per_call,
                f"{r.out_bytes / r.seconds / 1e9:.2f}",
                f"{base / r.seconds:.2f}" if base else "—",
                f"{100 * r.moved_bytes / r.seconds / 1e9 / (2 * copy_gbps):.0f}%",
            ]
        lines.append(
            f"| {r.tokens} | {r.dtype} | {r.ids} | {r.contender} | "
            + " | ".join(cells)
            + f" | {r.note} |"
        )
    return "\n".join(lines)


def torch_ratios(rows: list[Row]) -> str:
    """ember's time over torch's, per token count, dtype and ids (below 1: ember faster):
    ``execute`` and ``execute(torch ids)`` against ``F.embedding``, ``execute(out=)`` against
    ``index_select(out=)``."""
    times = {(r.tokens, r.dtype, r.ids, r.contender): r.seconds for r in rows if r.seconds}
    pairs = [
        ("ember", "torch embedding"),
        ("ember execute(torch ids)", "torch embedding"),
        ("ember execute(out=)", "torch index_select(out=)"),
    ]
    lines = [
        "| tokens | dtype | ids | " + " | ".join(f"{a} / {b}" for a, b in pairs) + " |",
        "|---:|---|---|" + "---:|" * len(pairs),
    ]
    for key in dict.fromkeys((r.tokens, r.dtype, r.ids) for r in rows):
        cells = [
            f"{times[(*key, a)] / times[(*key, b)]:.2f}"
            if (*key, a) in times and (*key, b) in times
            else "—"
            for a, b in pairs
        ]
        if any(c != "—" for c in cells):
            lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def plot(rows: list[Row], copy_gbps: float, path: str) -> None:
    """Output GB/s against tokens per call: dense tables left, quantized right (MAX dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (dense, quant) = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in rows:
        if (
            r.seconds is not None
            and not r.note
            and r.contender != "ember float32"
            and (r.ids == "fresh")
        ):
            series.setdefault((r.dtype, r.contender), []).append(
                (r.tokens, r.out_bytes / r.seconds / 1e9)
            )
    names = sorted({c for d, c in series if d in ("float32", "bfloat16")})
    formats = sorted({d for d, _ in series if d not in ("float32", "bfloat16")})
    colors = plt.get_cmap("tab10").colors
    for (dtype, name), points in series.items():
        xs, ys = zip(*sorted(points), strict=True)
        if dtype in ("float32", "bfloat16"):
            style = {
                "color": colors[names.index(name) % 10],
                "ls": "-" if dtype == "float32" else ":",
            }
            dense.plot(xs, ys, marker="o", label=f"{name} {dtype}", **style)
        else:
            style = {
                "color": colors[formats.index(dtype) % 10],
                "ls": "--" if "MAX" in name else "-",
            }
            quant.plot(xs, ys, marker="o", label=name, **style)
    for ax, title in ((dense, "dense tables"), (quant, "quantized tables (float32 out)")):
        ax.axhline(copy_gbps, color="k", ls="--", lw=0.8, label=f"copy {copy_gbps:.1f} GB/s")
        ax.set(xscale="log", yscale="log", xlabel="tokens per call", title=title)
        ax.legend(fontsize=7)
    dense.set_ylabel("output GB/s")
    fig.suptitle(f"Embedding lookup, {VOCAB} x {HIDDEN} table, {THREADS} threads")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def versions() -> str:
    """Versions of the contenders' packages that are installed."""
    found = []
    for package in ("numpy", "numba", "torch", "max", "ember"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found.append(f"{package} {importlib.metadata.version(package)}")
    return ", ".join(found)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, nargs="+", default=[1, 64, 512, 8192, 32768])
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    p.add_argument("--quant", nargs="+", default=[], choices=QUANT_FORMATS)
    p.add_argument(
        "--ids",
        nargs="+",
        default=["fresh"],
        choices=["fresh", "repeated"],
        help="dense tables: a fresh id set per call, and/or the same set again (rows cached)",
    )
    p.add_argument("--png", help="draw GB/s against tokens per call into this file")
    p.add_argument("--quick", action="store_true", help="fewer, shorter rounds (noisier)")
    p.add_argument("--max-worker", nargs=2, metavar=("FMT", "NPY"), help=argparse.SUPPRESS)
    p.add_argument("--max-load", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.budget, args.min_rounds = (0.3, 3) if args.quick else (2.0, 7)
    return args


def main(argv: list[str] | None = None) -> None:
    """Runs the benchmark and prints the report."""
    args = parse_args(argv)
    if args.max_worker:
        max_worker_main(*args.max_worker)
        return
    if args.max_load:
        max_load_main()
        return
    try:
        import max.engine  # noqa: F401

        args.max = True
    except ImportError:
        args.max = False
    print(f"{os.cpu_count()} CPUs; {versions()}", flush=True)
    roofline = copy_roofline(3 if args.quick else 10)
    loads: list[str] = []
    rows: list[Row] = []
    dense32 = None
    for dtype in args.dtypes:
        np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
        table = random_table(np_dtype)
        rows += run_dense(args, dtype, table, roofline, loads)
        if dtype == "float32":
            dense32 = table
        del table
    if args.quant and dense32 is None and importlib.util.find_spec("ember.engine"):
        dense32 = random_table(np.dtype(np.float32))
    for fmt in args.quant:
        rows += run_quant(args, fmt, dense32, roofline, loads)
    del dense32
    copy_gbps = (1 << 28) / float(np.median(roofline)) / 1e9
    if args.max:
        loads += max_load_times()
    if importlib.util.find_spec("ember.engine"):
        loads += ember_load_times()
    print(
        f"\ncopy roofline: {copy_gbps:.2f} GB/s copied (median of {len(roofline)} copies of"
        f" 256 MiB, {THREADS}-thread numba prange)\n"
        "% of roofline: (bytes read + bytes written) / time / (2 x copy GB/s); a lookup whose"
        " stores skip the write-allocate read that a plain copy pays can pass 100%\n"
        "× MAX speed: MAX's time / the contender's time (same tokens, same table)\n"
    )
    print(report(rows, copy_gbps))
    print()
    if ratios := torch_ratios(rows):
        print("ember's time / torch's (below 1: ember faster)\n")
        print(ratios)
        print()
    for line in loads:
        print(line)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak RSS of this process: {peak:.1f} GiB")
    if args.png:
        plot(rows, copy_gbps, args.png)
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
