"""`LMHead`: logits from an embedding's own table (a tied head), `hidden @ table.T`.

>>> from ember.graph import DeviceRef, Graph, TensorType
>>> emb = EmbeddingV2(1000, 64, DType.bfloat16, DeviceRef.CPU(), name="tokens")
>>> head = LMHead(emb, output="top_k", k=5)
>>> with Graph("g", input_types=[TensorType(DType.float32, ["batch", 64])]) as g:
...     values, ids = head(g.inputs[0])
>>> values.shape, values.dtype, ids.dtype
([Dim('batch'), Dim(5)], float32, int64)
>>> list(head.raw_state_dict()) == list(emb.raw_state_dict()) == ["tokens"]
True
"""

from __future__ import annotations

import numbers
from typing import Any, Literal

from ember.dtype import DType
from ember.graph import StaticDim, TensorValue, ops

from .embedding import EmbeddingV2, VocabParallelEmbedding
from .module import Module

__all__ = ["HIDDEN_DTYPES", "OUTPUTS", "LMHead"]

Output = Literal["logits", "argmax", "top_k", "logsumexp"]
OUTPUTS: tuple[str, ...] = ("logits", "argmax", "top_k", "logsumexp")

HIDDEN_DTYPES = (DType.float32, DType.bfloat16, DType.float16)
"""The hidden-state dtypes a head takes; each widens exactly to float32 before the products."""


class LMHead(Module):
    """The logits of hidden states against every row of `embedding`'s table, which the head
    shares: one weight in the graph, bound once at load.

    `head(hidden)` takes hidden states `(batch, hidden)` or `(batch, seq, hidden)` in float32,
    bfloat16 or float16 and returns, over the token axes (`...`):

    - `output="logits"`: float32 logits `(..., vocab)`;
    - `"argmax"`: int64 ids `(...)` of the largest logit;
    - `"top_k"`: `(values, ids)`, each `(..., k)`, largest first;
    - `"logsumexp"`: float32 `log(sum(exp(logits)))` per token `(...)`, from which
      log-probabilities are `logits - logsumexp` without a softmax output.

    The products are exact float32 dot products of the hidden states (widened, never
    quantized) with the table's rows (bfloat16 and float16 rows widened as they are read; rows
    of a quantized table decoded a few at a time by `ops.qmatmul`, bit for bit as gguf decodes
    them, never into a whole float table), with float32 accumulation. Ties in argmax and top-k
    go to the lowest id. NaN in the hidden states follows IEEE arithmetic and never raises:
    since NaN times anything (0 included) is NaN, a token with a NaN gets NaN for every logit
    and for its log-sum-exp; NaN ranks above every number (as in `numpy.argmax` and
    `torch.topk`), so its argmax is id 0 and its top-k ids `0..k-1`, with NaN values. (An
    infinite hidden value gives inf or NaN logits alike.)

    Raises (at construction):
        TypeError: `embedding` is not an embedding layer.
        NotImplementedError: the table is split over devices (not yet here).
        ValueError: an unknown `output`; `k` missing or outside `[1, vocab]` for "top_k", or
            given for another output.
    """

    def __init__(
        self, embedding: EmbeddingV2, *, output: Output = "logits", k: int | None = None
    ) -> None:
        super().__init__()
        if isinstance(embedding, VocabParallelEmbedding):
            raise NotImplementedError(
                "LMHead over a VocabParallelEmbedding needs the vocabulary-parallel head "
                "(per-device logits reduced to candidates), which is not built yet"
            )
        if not isinstance(embedding, EmbeddingV2):
            raise TypeError(f"LMHead takes an EmbeddingV2 or Embedding, got {embedding!r}")
        if output not in OUTPUTS:
            raise ValueError(f"LMHead: output must be one of {OUTPUTS}, got {output!r}")
        if output == "top_k":
            if isinstance(k, bool) or not isinstance(k, numbers.Integral):
                raise ValueError(f'LMHead: output="top_k" needs an int k, got {k!r}')
            vocab = getattr(embedding, "vocab_size", None)
            if k < 1 or (vocab is not None and k > vocab):
                raise ValueError(f"LMHead: k must be in [1, {vocab or 'vocab'}], got {k}")
        elif k is not None:
            raise ValueError(f'LMHead: k is for output="top_k", not {output!r}')
        self.embedding = embedding
        self.output = output
        self.k = None if k is None else int(k)

    def __call__(self, hidden: Any) -> TensorValue | tuple[TensorValue, TensorValue]:
        """The head's output for `hidden` (see the class).

        Raises:
            TypeError: `hidden` is not float32, bfloat16 or float16.
            ValueError: `hidden` is not of rank 2 or 3, its width is not the table's, or
                (top_k) `k` exceeds the vocabulary of an `Embedding(weights)` table.
        """
        table = self._table()
        encoding = self.embedding.quantization_encoding
        width = table.shape[1] if encoding is None else encoding.hidden_size(int(table.shape[1]))
        states = ops.as_value(hidden)
        if states.dtype not in HIDDEN_DTYPES:
            raise TypeError(
                f"LMHead: hidden states must be one of "
                f"{', '.join(repr(d) for d in HIDDEN_DTYPES)}, got {states.dtype!r}"
            )
        if states.rank not in (2, 3):
            raise ValueError(
                "LMHead: hidden states must be (batch, hidden) or (batch, seq, hidden), "
                f"got shape {states.shape}"
            )
        if states.shape[-1] != width:
            raise ValueError(
                f"LMHead: hidden states of width {states.shape[-1]} do not match the table "
                f"{table.shape} (vocab, hidden): expected width {width}"
            )
        vocab = table.shape[0]
        if self.k is not None and isinstance(vocab, StaticDim) and self.k > int(vocab):
            raise ValueError(f"LMHead: k must be in [1, {vocab}], got {self.k}")
        states = states.to(table.device).cast(DType.float32)
        if encoding is None:
            logits = ops.matmul(states, ops.transpose(table, 0, 1))
        else:
            logits = ops.qmatmul(encoding, None, states, table)
        if self.output == "argmax":
            return ops.squeeze(ops.argmax(logits, axis=-1), -1)
        if self.output == "top_k":
            return ops.top_k(logits, self.k, axis=-1)
        if self.output == "logsumexp":
            return ops.squeeze(ops.logsumexp(logits, axis=-1), -1)
        return logits

    def _table(self) -> TensorValue:
        """The embedding's table as a graph value: `(vocab, hidden)` floats, or `(vocab, row
        bytes)` uint8 blocks for a quantized one.

        Raises:
            ValueError: an `Embedding(weights)` table that is not 2-D.
            TypeError: a table of another dtype than float32, bfloat16 or float16 (or uint8
                when quantized).
        """
        table = ops.as_value(self.embedding.weight)
        if table.rank != 2:
            raise ValueError(f"LMHead: the table must be 2-D (vocab, hidden), got {table.shape}")
        if self.embedding.quantization_encoding is not None:
            if table.dtype is not DType.uint8:
                raise TypeError(
                    f"LMHead: a {self.embedding.quantization_encoding.value} table must be uint8 "
                    f"blocks, got {table.dtype!r}"
                )
            return table
        if table.dtype not in HIDDEN_DTYPES:
            raise TypeError(
                f"LMHead: the table must be one of {', '.join(repr(d) for d in HIDDEN_DTYPES)}"
                f" (or quantized), got {table.dtype!r}"
            )
        return table
