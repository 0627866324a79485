"""Peak resident memory of lookups, each case measured in a fresh process.

- dense: a 128256 x 4096 float32 table (2.1 GB) bound from an `np.memmap`, 8192-token lookups;
  bar: peak RSS <= table + 2 x output + 300 MB.
- quantized: the same vocabulary as Q4_K blocks in memory; bar: from before the table exists
  (ember imported) to after `load`, RSS grows by no more than the quantized bytes + 100 MB.
- checkpoint: a 1 GB safetensors table (128256 x 2048 float32) opened with
  `ember.weights.load`, bound and looked up at 64 ids; bar: RSS grows by well under the
  table (at most a quarter of it; the kernel maps whole page-cache folios, up to 2 MB, on
  each fault, so 64 scattered rows map far more than their 512 KB).

Usage: python benchmarks/memory.py [--dir DIR]   (the memmap file is written under DIR)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

VOCAB, HIDDEN, TOKENS, CALLS = 128256, 4096, 8192, 5
MB = 1 << 20


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def rss_parts() -> dict[str, int]:
    """Resident bytes by kind: anonymous (the process's own) and file-backed (mapped files)."""
    parts = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("RssAnon:", "RssFile:")):
            parts[line.split(":")[0]] = int(line.split()[1]) * 1024
    return parts


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def lookup_model(table, encoding=None):
    import ember.nn as nn
    from ember.dtype import DType
    from ember.engine import InferenceSession
    from ember.graph import Graph, TensorType

    dtype = DType.uint8 if encoding else DType.float32
    emb = nn.EmbeddingV2(VOCAB, table.shape[1], dtype, quantization_encoding=encoding, name="t")
    with Graph("lookup", input_types=[TensorType(DType.int32, ["n"])]) as g:
        g.output(emb(g.inputs[0]))
    return InferenceSession(num_threads=2).load(g, {"t": table})


def run_lookups(model) -> int:
    import numpy as np

    rng = np.random.default_rng(0)
    nbytes = 0
    for _ in range(CALLS):
        out = model.execute(rng.integers(0, VOCAB, TOKENS, dtype=np.int32))[0]
        nbytes = out.to_numpy().nbytes
        del out
    return nbytes


def dense_case(path: str) -> dict:
    import numpy as np

    table = np.memmap(path, np.float32, "r", shape=(VOCAB, HIDDEN))
    model = lookup_model(table)
    output = run_lookups(model)
    limit = table.nbytes + 2 * output + 300 * MB
    return {"case": "dense float32 memmap", "peak_mb": peak_bytes() / MB, "limit_mb": limit / MB}


def quantized_case() -> dict:
    import numpy as np

    import ember.engine.backends.native  # noqa: F401 - imports are not the load's cost
    from ember.graph import QuantizationEncoding

    encoding = QuantizationEncoding.Q4_K
    before = rss_bytes()
    table = np.random.default_rng(0).integers(
        0, 256, (VOCAB, encoding.row_bytes(HIDDEN)), dtype=np.uint8
    )
    table.reshape(-1, encoding.block_size)[:, :4] = [0, 20, 0, 20]  # small fp16 scales
    model = lookup_model(table, encoding)
    grown = rss_bytes() - before
    run_lookups(model)
    limit = table.nbytes + 100 * MB
    return {"case": "Q4_K in memory, after load", "grown_mb": grown / MB, "limit_mb": limit / MB}


def checkpoint_case(path: str) -> dict:
    import numpy as np

    import ember.engine.backends.native
    import ember.nn as nn
    import ember.weights
    from ember.dtype import DType
    from ember.engine import InferenceSession
    from ember.graph import Graph, TensorType

    def bind(data):
        layer = nn.EmbeddingV2.from_weight(data)
        with Graph("lookup", input_types=[TensorType(DType.int32, ["n"])]) as g:
            g.output(layer(g.inputs[0]))
        return InferenceSession(num_threads=2).load(g, {data.name: data})

    small = np.zeros((4, 8), np.float32)  # the kernels' first load is not the table's cost
    bind(ember.weights.WeightData("w", small, DType.float32, small.shape)).execute([1])
    before, parts = rss_bytes(), rss_parts()
    data = ember.weights.load(path)["embed_tokens.weight"]
    model = bind(data)
    ids = np.random.default_rng(0).integers(0, data.shape[0], 64, dtype=np.int32)
    assert np.array_equal(model.execute(ids)[0].to_numpy(), data.array[ids])
    grown = rss_bytes() - before
    anon, file = (rss_parts()[k] - parts[k] for k in ("RssAnon", "RssFile"))
    case = f"1 GB safetensors table, 64 ids: {anon / MB:.0f} MB own, {file / MB:.0f} MB mapped"
    return {"case": case, "grown_mb": grown / MB, "limit_mb": data.nbytes / 4 / MB}


def write_checkpoint(path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    table = np.random.default_rng(0).standard_normal((VOCAB, HIDDEN // 2), dtype=np.float32)
    save_file({"embed_tokens.weight": table}, str(path))


def write_table(path: Path) -> None:
    import numpy as np

    table = np.memmap(path, np.float32, "w+", shape=(VOCAB, HIDDEN))
    rng = np.random.default_rng(0)
    for start in range(0, VOCAB, 8192):
        rows = table[start : start + 8192]
        rows[:] = rng.standard_normal(rows.shape, dtype=np.float32)
    table.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="where to write the 2.1 GB memmap file")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind = args.child[0]
        if kind == "dense":
            case = dense_case(args.child[1])
        elif kind == "checkpoint":
            case = checkpoint_case(args.child[1])
        else:
            case = quantized_case()
        print(json.dumps(case))
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        path = Path(scratch) / "table.f32"
        write_table(path)
        checkpoint = Path(scratch) / "model.safetensors"
        write_checkpoint(checkpoint)
        rows = []
        for child in (["dense", str(path)], ["quantized"], ["checkpoint", str(checkpoint)]):
            run = subprocess.run(
                [sys.executable, __file__, "--child", *child],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            rows.append(json.loads(run.stdout))
    print("| case | measured MB | bar MB | within |")
    print("|---|---:|---:|---|")
    for row in rows:
        measured = row.get("peak_mb", row.get("grown_mb"))
        kind = "peak RSS" if "peak_mb" in row else "RSS growth"
        ok = measured <= row["limit_mb"]
        print(f"| {row['case']} ({kind}) | {measured:.0f} | {row['limit_mb']:.0f} | {ok} |")


if __name__ == "__main__":
    main()
