"""While the native kernels compile, lookups run through numpy and give the same bits and the
same errors; kernels compile in the background or, with EMBER_COMPILE=sync, when first
needed; a kernel that cannot compile leaves the numpy path serving; a process may exit while
a kernel compiles."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import threading

import ml_dtypes
import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.engine.backends.native.kernels import background, lookup
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType, Weight, ops
from ember.quant import FORMATS
from ember.quant.samples import sample_table

LAYER_POLICIES = ["error", "zero", "clamp"]
POLICIES = [*LAYER_POLICIES, "wrap"]
ENCODINGS = [e for e in QuantizationEncoding if e.name in FORMATS]
OUT_DTYPES = [DType.float32, DType.bfloat16, DType.float16]


class NeverReady(background.Kernel):
    """A kernel whose compile never starts: lookups stay on the numpy path."""

    def request(self) -> bool:
        return False


@contextlib.contextmanager
def numpy_path():
    """Models loaded and run in it use the numpy path; the compiled entry points must not run."""

    def compiled(*args, **kwargs):
        raise AssertionError("a compiled kernel ran while it was not ready")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(background, "kernel", lambda key, name, warm: NeverReady(name, warm))
        patch.setattr(lookup, "gather_rows", compiled)
        patch.setattr(lookup, "gather_dequantize", compiled)
        yield


def run(graph, weights, *inputs):
    """Each output as numpy, or the exception `execute` raised."""
    model = InferenceSession(num_threads=2, backend="native").load(graph, weights)
    try:
        return [out.to_numpy() for out in model.execute(*inputs)]
    except Exception as exc:  # compared by type and message
        return exc


def same(a, b):
    if isinstance(a, Exception) or isinstance(b, Exception):
        return type(a) is type(b) and str(a) == str(b)
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        for x, y in zip(a, b, strict=True)
    )


def both_paths(graph, weights, *inputs):
    """The compiled results, and the numpy path's."""
    compiled = run(graph, weights, *inputs)
    with numpy_path():
        fallback = run(graph, weights, *inputs)
    return compiled, fallback


def lookup_graph(dtype, ids_dtype, policy, vocab, hidden, encoding=None, output_dtype=None):
    """One `EmbeddingV2` lookup."""
    emb = nn.EmbeddingV2(
        vocab,
        hidden,
        dtype,
        DeviceRef.CPU(),
        name="t",
        quantization_encoding=encoding,
        out_of_range=policy,
        **({} if output_dtype is None else {"output_dtype": output_dtype}),
    )
    with Graph("g", input_types=[TensorType(ids_dtype, ["n"])]) as g:
        g.output(emb(g.inputs[0]))
    return g


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("ids_dtype", [DType.int64, DType.int32, DType.uint8, DType.int8])
@pytest.mark.parametrize("dtype", [DType.float32, DType.bfloat16])
def test_dense_lookups(dtype, ids_dtype, policy):
    rng = np.random.default_rng(1)
    table = rng.integers(0, 1 << 16, (9, 5), np.uint16).view(ml_dtypes.bfloat16)
    if dtype is DType.float32:
        table = rng.integers(0, 1 << 32, (9, 5), np.uint32).view(np.float32)
    info = np.iinfo(ids_dtype.to_numpy())
    for values in ([3, 0, 8, 8], [3, 9, 0], [-1, 2, -9], [info.max, 1, info.min]):
        ids = np.array([v for v in values if info.min <= v <= info.max], ids_dtype.to_numpy())
        with Graph("g", input_types=[TensorType(ids_dtype, ["n"])]) as graph:
            weight = Weight("t", dtype, [9, 5], DeviceRef.CPU())
            graph.output(ops.gather(weight, graph.inputs[0], 0, out_of_range=policy))
        compiled, fallback = both_paths(graph, {"t": table}, ids)
        assert same(compiled, fallback), (values, compiled, fallback)


@pytest.mark.parametrize("output_dtype", OUT_DTYPES, ids=str)
@pytest.mark.parametrize("encoding", ENCODINGS, ids=lambda e: e.name)
def test_quantized_lookups(encoding, output_dtype):
    blocks = sample_table(FORMATS[encoding.name], 6, 2 * FORMATS[encoding.name].block_elements, 3)
    graph = lookup_graph(
        DType.uint8, DType.int64, "zero", 6, blocks.shape[1], encoding, output_dtype
    )
    compiled, fallback = both_paths(graph, {"t": blocks}, np.array([5, 0, 7, -1, 2]))
    assert same(compiled, fallback)


@pytest.mark.parametrize("policy", LAYER_POLICIES)
def test_vocab_parallel_and_dequantize(policy):
    table = np.random.default_rng(2).standard_normal((11, 8)).astype(np.float32)
    refs = [DeviceRef.CPU(i) for i in range(3)]
    emb = nn.VocabParallelEmbedding(
        11, 8, DType.float32, devices=refs, name="t", out_of_range=policy
    )
    blocks = FORMATS["q4_k"].quantize(np.ones((2, 256), np.float32))
    with Graph(
        "vp", input_types=[TensorType(DType.int64, ["n"]), TensorType(DType.uint8, [2, 144])]
    ) as g:
        g.output(*emb(g.inputs[0]), ops.dequantize(QuantizationEncoding.Q4_K, g.inputs[1]))
    ids = np.array([10, 0, 4, -2])
    compiled, fallback = both_paths(g, {"t": table}, ids, blocks)
    assert same(compiled, fallback)


def test_a_kernel_compiles_in_the_background(monkeypatch):
    monkeypatch.setenv("EMBER_COMPILE", "background")
    calls = []
    k = background.Kernel("test", lambda: calls.append(1))
    k.request()
    assert background.wait(timeout=60, kernels=[k])
    assert k.ready and calls == [1]
    assert k.request() and calls == [1]  # compiled once


def test_sync_mode_compiles_in_the_calling_thread(monkeypatch):
    monkeypatch.setenv("EMBER_COMPILE", "sync")
    threads = []
    k = background.Kernel("test", lambda: threads.append(threading.current_thread()))
    assert k.request() is True
    assert threads == [threading.current_thread()]


def test_a_kernel_that_cannot_compile_leaves_numpy_serving(monkeypatch):
    monkeypatch.setenv("EMBER_COMPILE", "sync")

    def broken():
        raise RuntimeError("no compiler today")

    made = {}

    def failing(key, name, warm):
        made[key] = made.get(key) or background.Kernel(name, broken)
        return made[key]

    monkeypatch.setattr(background, "kernel", failing)
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    with pytest.warns(RuntimeWarning, match="no compiler today"):
        result = run(
            lookup_graph(DType.float32, DType.int64, "error", 4, 3), {"t": table}, np.array([3, 1])
        )
    np.testing.assert_array_equal(result[0], table[[3, 1]])


def test_cold_cache_first_run_and_exit_while_compiling(tmp_path):
    """A fresh numba cache: the first execute is right before any kernel is ready, and the
    process exits cleanly while one compiles; a later process runs them compiled."""
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        import ember.nn as nn
        from ember.dtype import DType
        from ember.engine import InferenceSession
        from ember.engine.backends.native.kernels import background
        from ember.graph import Graph, QuantizationEncoding, TensorType
        from ember.quant import FORMATS

        values = np.random.default_rng(0).standard_normal((50, 256)).astype(np.float32)
        blocks = FORMATS["q4_k"].quantize(values)
        ids = np.array([49, 0, 7])
        q4_k = QuantizationEncoding.Q4_K
        for table, dtype, enc, want in (
            (values, DType.float32, None, values[ids]),
            (blocks, DType.uint8, q4_k, FORMATS["q4_k"].dequantize(blocks[ids])),
        ):
            emb = nn.EmbeddingV2(50, table.shape[1], dtype, quantization_encoding=enc, name="t")
            with Graph("g", input_types=[TensorType(DType.int64, ["n"])]) as g:
                g.output(emb(g.inputs[0]))
            model = InferenceSession(backend="native").load(g, {"t": table})
            got = model.execute(ids)[0].to_numpy()
            assert got.tobytes() == want.tobytes()
            if sys.argv[1] == "wait":
                assert background.wait(timeout=300)
                assert model.execute(ids)[0].to_numpy().tobytes() == want.tobytes()
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "EMBER_COMPILE"}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba")
    for step in ("exit", "wait"):
        proc = subprocess.run(
            [sys.executable, "-c", script, step], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
        assert proc.stderr == "", proc.stderr


def test_a_forked_child_compiles_what_it_needs():
    """A fork while a kernel compiles in the background: the child is not left with a kernel
    nobody will ever compile. (In a fresh process: this one has JAX's threads, which a fork
    does not go with.)"""
    script = textwrap.dedent(
        """
        import multiprocessing, os, time
        os.environ["EMBER_COMPILE"] = "background"
        from ember.engine.backends.native.kernels import background

        k = background.kernel("slow test kernel", "slow", lambda: time.sleep(0.5))
        k.request()

        def child(queue):
            queue.put(k.ready or (k.request() or k.wait(timeout=30)))

        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        process = context.Process(target=child, args=(queue,))
        process.start()
        assert queue.get(timeout=60) is True
        process.join(timeout=60)
        assert process.exitcode == 0
        assert background.wait(timeout=30, kernels=[k])
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_an_unknown_compile_mode_is_an_error(monkeypatch):
    monkeypatch.setenv("EMBER_COMPILE", "Sync")
    k = background.Kernel("test", lambda: None)
    with pytest.raises(ValueError, match="EMBER_COMPILE must be 'sync' or 'background'"):
        k.request()
    monkeypatch.setenv("EMBER_COMPILE", "sync")
    assert k.request()  # still compiles once the setting is right


def test_wait_for_kernels_returns_once_they_are_compiled(monkeypatch):
    import time

    from ember.engine import wait_for_kernels

    monkeypatch.setenv("EMBER_COMPILE", "background")
    k = background.Kernel("slow", lambda: time.sleep(0.3))
    monkeypatch.setitem(background._kernels, "slow kernel to wait for", k)
    assert k.request() is False
    assert wait_for_kernels(timeout=60) is True
    assert k.ready
