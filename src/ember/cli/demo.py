"""`ember demo`: the seed example, executed."""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

__all__ = ["demo"]


def demo(args: argparse.Namespace) -> int:
    """The seed example, executed: build, load on random weights, check against numpy, time."""
    import ember.nn as nn
    from ember.driver import CPU, Accelerator, accelerator_count
    from ember.dtype import DType
    from ember.engine import InferenceSession, wait_for_kernels
    from ember.graph import DeviceRef, Graph, ops

    batch_size, seq_length, vocab_size, hidden_dim = 4, 16, 10000, 256
    device = DeviceRef.GPU() if accelerator_count() else DeviceRef.CPU()
    rng = np.random.default_rng(0)
    input_data = rng.integers(0, vocab_size, (batch_size, seq_length), dtype=np.int32)
    with Graph(name="embedding_example") as graph:
        input_indices = ops.constant(input_data, dtype=DType.int32)
        embedding = nn.EmbeddingV2(
            vocab_size=vocab_size,
            hidden_dim=hidden_dim,
            dtype=DType.float32,
            device=device,
            name="token_embeddings",
        )
        embeddings = embedding(input_indices)
        print(f"Embedding output shape: {embeddings.shape}")
        graph.output(embeddings)

    table = rng.standard_normal((vocab_size, hidden_dim), dtype=np.float32)
    if device.is_gpu():  # the seed's GPU lookup, on the XLA backend
        session = InferenceSession(devices=[CPU(), Accelerator()])
    else:
        session = InferenceSession(num_threads=args.threads)
    start = time.perf_counter()
    model = session.load(graph, weights_registry={"token_embeddings": table})
    load_ms = (time.perf_counter() - start) * 1e3
    result = model.execute()[0].to_numpy()
    if not np.array_equal(result, table[input_data]):
        print("error: the lookup disagrees with numpy fancy indexing", file=sys.stderr)
        return 1
    threads = f"{session.num_threads} threads" if session.num_threads else "XLA"
    print(f"Executed on {device} ({session.backend} backend, {threads}); matches numpy: True")
    print(f"First vector, first values: {np.array2string(result[0, 0, :4], precision=4)}")

    wait_for_kernels()  # time the compiled lookup, not the numpy one that serves meanwhile
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        model.execute()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(
        f"load {load_ms:.1f} ms; execute median {median * 1e6:.1f} us for "
        f"{batch_size * seq_length} tokens ({result.nbytes / median / 1e9:.2f} GB/s of output)"
    )
    return 0
