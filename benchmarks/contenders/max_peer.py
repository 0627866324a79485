"""MAX's ``Embedding`` in a graph on the CPU: a peer measured, never a dependency."""

from __future__ import annotations

import time

import ml_dtypes
import numpy as np
from embedding_tables import HIDDEN, VOCAB, row_bytes
from harness import cycling

from contenders.contender import Contender


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
