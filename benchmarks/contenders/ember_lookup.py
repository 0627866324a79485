"""ember's lookups through its public API: fresh results, ``out=`` buffers, torch ids."""

from __future__ import annotations

import ml_dtypes
import numpy as np
from embedding_tables import THREADS, VOCAB
from harness import cycling

from contenders.contender import Contender


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
