"""Bytes a row-split bag collection exchanges on XLA, against moving the rows it pools.

FBGEMM's shape (batch 512, bags of 20, width 128, sum), one 100k-row table split over 2 and 4
CPU devices, float32 and rowwise int8. The exchange counts what the devices received: one
float32 partial vector per bag from each other device, against every pooled row (as stored)
sent to the n - 1 other devices. Counted, not timed.

    python benchmarks/bags_sharded_bytes.py
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import numpy as np

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType
from ember.quant import FORMATS

ROWS, WIDTH, BATCH, BAG = 100_000, 128, 512, 20


def main() -> None:
    session = InferenceSession(backend="xla")
    rng = np.random.default_rng(0)
    floats = rng.standard_normal((ROWS, WIDTH)).astype(np.float32)
    int8 = QuantizationEncoding.ROWWISE_INT8
    tables = {
        "float32": (nn.EmbeddingBag(ROWS, WIDTH, DType.float32, name="t"), floats),
        "rowwise int8": (
            nn.EmbeddingBag(ROWS, WIDTH + 8, DType.uint8, None, int8, "t"),
            FORMATS["rowwise_int8"].quantize(floats),
        ),
    }
    print("| table | devices | partials received (bytes) | rows instead | rows / partials |")
    print("|---|---:|---:|---:|---:|")
    for label, (bag, table) in tables.items():
        for n in (2, 4):
            devices = [DeviceRef.CPU(i) for i in range(n)]
            collection = nn.EmbeddingBagCollection([bag], devices=devices, sharding="row")
            types = [TensorType(DType.int64, ["n"]), TensorType(DType.int32, [1, "batch"])]
            with Graph("bags", input_types=types) as g:
                g.output(*collection(*g.inputs))
            model = session.load(g, {"t": table})
            values = rng.integers(0, ROWS, BATCH * BAG)
            model.execute(values, np.full((1, BATCH), BAG, np.int32))
            [exchange] = model._executable._memo.values()
            partials, rows = exchange.exchanged_bytes, exchange.row_bytes
            print(f"| {label} | {n} | {partials} | {rows} | {rows / partials:.2f} |")


if __name__ == "__main__":
    main()
