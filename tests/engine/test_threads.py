"""Several Python threads executing large lookups at once, on numba's workqueue threading layer
(the one used where OpenMP and TBB are missing), which aborts the process on concurrent
parallel launches unless ember serializes them."""

import os
import subprocess
import sys

SCRIPT = """
import threading
import numpy as np
import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import Graph, QuantizationEncoding, TensorType
from ember.quant import FORMATS

rng = np.random.default_rng(0)
dense = rng.standard_normal((2000, 1024)).astype(np.float32)
blocks = FORMATS["q8_0"].quantize(dense)
models = []
for table, encoding in ((dense, None), (blocks, QuantizationEncoding.Q8_0)):
    dtype = DType.uint8 if encoding else DType.float32
    emb = nn.EmbeddingV2(2000, table.shape[1], dtype, quantization_encoding=encoding)
    with Graph("g", input_types=[TensorType(DType.int32, ["n"])]) as g:
        g.output(emb(g.inputs[0]))
    models.append(InferenceSession(num_threads=2).load(g, {"weight": table}))
want = [dense, FORMATS["q8_0"].dequantize(blocks)]
wrong = []

def work(seed):
    ids_rng = np.random.default_rng(seed)
    for _ in range(20):
        for model, reference in zip(models, want):
            ids = ids_rng.integers(0, 2000, 1024).astype(np.int32)
            if not np.array_equal(model.execute(ids)[0].to_numpy(), reference[ids]):
                wrong.append(seed)

threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
import numba
assert numba.threading_layer() == "workqueue", numba.threading_layer()
print("wrong", len(wrong))
"""


def test_concurrent_parallel_lookups_on_the_workqueue_layer():
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "wrong 0"
