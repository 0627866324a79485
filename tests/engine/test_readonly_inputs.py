"""Read-only tables and ids (memory maps opened "r", frozen buffers) run on the same compiled
kernels as writeable ones: no compile in the middle of an execute."""

import numpy as np
from numba.core import types

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.engine.backends.native.kernels.compiled import dequantize_kernels, gather_kernels
from ember.graph import Graph, QuantizationEncoding, TensorType
from ember.quant import FORMATS


def table_and_ids_types():
    """The compiled types of each kernel's table and ids arguments."""
    positions = {gather_kernels.gather_serial: (0, 1), gather_kernels.gather_parallel: (0, 1)}
    q4_k = dequantize_kernels.kernels("q4_k")
    positions |= dict.fromkeys(q4_k.values(), (0, 1))
    return [sig[i] for kernel, at in positions.items() for sig in kernel.signatures for i in at]


def frozen(array):
    array = array.copy()
    array.flags.writeable = False
    return array


def run(table, encoding=None):
    dtype = DType.uint8 if encoding else DType.float32
    emb = nn.EmbeddingV2(len(table), table.shape[1], dtype, quantization_encoding=encoding)
    with Graph("ro", input_types=[TensorType(DType.int64, ["n"])]) as g:
        g.output(emb(g.inputs[0]))
    model = InferenceSession(num_threads=2).load(g, {"weight": table})
    ids = frozen(np.arange(len(table))[::-1])
    return ids, model.execute(ids)[0].to_numpy()


def test_read_only_tables_and_ids(tmp_path):
    path = tmp_path / "table.f32"
    np.arange(64, dtype=np.float32).reshape(16, 4).tofile(path)
    table = np.memmap(path, np.float32, "r", shape=(16, 4))
    ids, result = run(table)
    np.testing.assert_array_equal(result, table[ids])

    blocks = frozen(FORMATS["q4_k"].quantize(np.ones((8, 256), np.float32)))
    ids, result = run(blocks, QuantizationEncoding.Q4_K)
    np.testing.assert_array_equal(result, FORMATS["q4_k"].dequantize(blocks[ids]))

    compiled = table_and_ids_types()
    assert compiled and all(isinstance(t, types.Array) and t.mutable for t in compiled), compiled
