"""The `ember` command."""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

__all__ = ["main"]


def demo(args: argparse.Namespace) -> int:
    """The seed example, executed: build, load on random weights, check against numpy, time."""
    import ember.nn as nn
    from ember.driver import CPU, Accelerator, accelerator_count
    from ember.dtype import DType
    from ember.engine import InferenceSession
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


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _threads(text: str) -> int:
    import numba

    value = _positive(text)
    if value > numba.config.NUMBA_NUM_THREADS:
        raise argparse.ArgumentTypeError(
            f"this machine runs at most {numba.config.NUMBA_NUM_THREADS} threads, got {value}"
        )
    return value


def launch(args: argparse.Namespace) -> int:
    """Start the local processes of a job of several (see `ember.distributed`)."""
    from ember.distributed import launch as start

    if not args.command:
        print(
            "ember launch: give a script to run, e.g. ember launch -n 2 serve.py", file=sys.stderr
        )
        return 2
    return start(
        args.command,
        args.n,
        coordinator=args.coordinator,
        num_processes=args.num_processes,
        first_id=args.first_id,
        local_cpu_devices=args.cpu_devices,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ember", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_demo = commands.add_parser("demo", help="build, execute and time the seed example")
    run_demo.add_argument("--threads", type=_threads, default=None, help="kernel threads")
    run_demo.add_argument("--repeats", type=_positive, default=200, help="timed executions")
    run_demo.set_defaults(handler=demo)
    run_launch = commands.add_parser(
        "launch", help="run a script as the processes of one job (ember.distributed)"
    )
    run_launch.add_argument("-n", type=_positive, required=True, help="processes on this host")
    run_launch.add_argument("--coordinator", help="host:port of process 0 (default: local)")
    run_launch.add_argument("--num-processes", type=_positive, help="processes in the job")
    run_launch.add_argument("--first-id", type=int, default=0, help="id of this host's first")
    run_launch.add_argument("--cpu-devices", type=_positive, help="CPU devices per process")
    run_launch.add_argument("command", nargs=argparse.REMAINDER, help="script and its arguments")
    run_launch.set_defaults(handler=launch)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
