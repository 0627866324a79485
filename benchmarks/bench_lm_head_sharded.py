"""The vocabulary-parallel tied head against the unsharded head, and the bytes it exchanges.

`nn.LMHead` over a `VocabParallelEmbedding` split over 2 and 4 CPU devices, and over an
`EmbeddingV2` of the whole table, take turns (round-robin, median seconds per call) on the same
hidden states, for greedy ids and top-k. Every sharded result is first checked against the
unsharded head's, bit for bit. On XLA the devices exchange candidates through `lax.all_gather`,
and the bytes they received are read from the exchange's count, beside what an all-gather of
the full logits receives; the native backend's devices share host memory and exchange nothing.
On XLA, `--xla-matmul` adds XLA's own product (`jnp.matmul` over the transposed table, no
fixed summation order) beside the head, to show what the fixed order costs.

    python benchmarks/bench_lm_head_sharded.py --backend xla --vocab 32000 --hidden 1024
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np
from harness import add_save_option, machine_note, ratio, recorded, round_robin, timed_slot

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import DeviceRef, Graph, TensorType


def head_model(session, table, devices: int | None, output: str, k: int | None):
    vocab, width = table.shape
    if devices is None:
        emb = nn.EmbeddingV2(vocab, width, DType.float32, name="t")
    else:
        refs = [DeviceRef.CPU(i) for i in range(devices)]
        emb = nn.VocabParallelEmbedding(vocab, width, DType.float32, devices=refs, name="t")
    with Graph(output, input_types=[TensorType(DType.float32, ["batch", width])]) as g:
        result = nn.LMHead(emb, output=output, k=k)(g.inputs[0])
        per_device = result if isinstance(result, list) else [result]
        g.output(*(v for r in per_device for v in (r if isinstance(r, tuple) else (r,))))
    return session.load(g, {"t": table})


def exchanged(model, hidden) -> int | None:
    """Bytes all devices received in one execute (XLA's count), None where nothing crosses."""
    model.execute(hidden)  # the first execute makes the exchange
    memo = getattr(model._executable, "_memo", None)
    if not memo:
        return None
    [exchange] = memo.values()
    before = exchange.exchanged_bytes
    model.execute(hidden)
    return exchange.exchanged_bytes - before


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="native", choices=["native", "xla"])
    p.add_argument("--devices", type=int, nargs="+", default=[2, 4])
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--budget", type=float, default=4.0)
    p.add_argument("--xla-matmul", action="store_true")
    add_save_option(p, "bench_lm_head_sharded")
    args = p.parse_args(argv)
    if args.save is not None:  # one file per backend
        args.save = args.save.with_name(f"bench_lm_head_sharded_{args.backend}.txt")
    with recorded(args.save):
        run(args)


def run(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    table = rng.standard_normal((args.vocab, args.hidden), np.float32)
    session = InferenceSession(backend=args.backend)
    print(machine_note())
    print(f"{args.backend}: {args.vocab} x {args.hidden} float32 tied head, top-k k={args.k}")
    print(
        "| output | batch | head | median per call | x unsharded | bytes received, all devices "
        "| / full-logits all-gather |"
    )
    print("|---|---:|---|---:|---:|---:|---:|")
    for output, k in (("argmax", None), ("top_k", args.k)):
        for batch in args.batch:
            hidden = rng.standard_normal((batch, args.hidden), np.float32)
            models = {"unsharded": head_model(session, table, None, output, k)}
            for n in args.devices:
                models[f"{n} devices"] = head_model(session, table, n, output, k)
            want = [r.to_numpy() for r in models["unsharded"].execute(hidden)]
            for name, m in list(models.items())[1:]:
                got = [r.to_numpy() for r in m.execute(hidden)]
                for g, w in zip(got, want * (len(got) // len(want)), strict=True):
                    assert g.tobytes() == w.tobytes(), f"{name} differs from the unsharded head"
            slots = {
                name: timed_slot(lambda m=m, h=hidden: ready(m.execute(h)))
                for name, m in models.items()
            }
            if args.xla_matmul and args.backend == "xla":
                slots["jnp.matmul"] = timed_slot(xla_matmul(table, hidden))
            med = round_robin(slots, args.budget, min_rounds=10)
            for name, seconds in med.items():
                moved, logits = "", ""
                if name in models and name != "unsharded":
                    n = int(name.split()[0])
                    got = exchanged(models[name], hidden)
                    if got is not None:
                        full = head_model(session, table, n, "logits", None)
                        moved, logits = f"{got}", f"{got / exchanged(full, hidden):.4f}"
                print(
                    f"| {output} | {batch} | {name} | {seconds * 1e3:.2f} ms | "
                    f"{ratio(seconds, med['unsharded'])} | {moved} | {logits} |"
                )


def ready(results: list) -> list:
    """The results once computed: XLA returns before its device work ends."""
    for result in results:
        getattr(result._array, "block_until_ready", lambda: None)()
    return results


def xla_matmul(table: np.ndarray, hidden: np.ndarray):
    """XLA's own product against the table transposed once (as the head's graph folds it)."""
    import jax
    import jax.numpy as jnp

    transposed = jnp.asarray(np.ascontiguousarray(table.T))
    product = jax.jit(lambda h, t: jnp.matmul(h, t, precision=jax.lax.Precision.HIGHEST))
    return lambda: product(hidden, transposed).block_until_ready()


if __name__ == "__main__":
    main()
