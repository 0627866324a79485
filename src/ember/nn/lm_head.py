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
from ember.graph.ops.sharded_gather import scattered

from .embedding import EmbeddingV2, VocabParallelEmbedding, described
from .linear import row_products
from .module import Module

__all__ = ["HIDDEN_DTYPES", "OUTPUTS", "LMHead"]

Output = Literal["logits", "argmax", "top_k", "logsumexp"]
OUTPUTS: tuple[str, ...] = ("logits", "argmax", "top_k", "logsumexp")

HIDDEN_DTYPES = (DType.float32, DType.bfloat16, DType.float16)
"""The hidden-state dtypes a head takes; each widens exactly to float32 before the products."""


class LMHead(Module):
    """The logits of hidden states against every row of `embedding`'s table, which the head
    shares: one weight in the graph, bound once at load.

    `head(hidden)` takes hidden states `(batch, hidden)` or `(batch, seq, hidden)`, or one
    token's `(hidden)` as Flax's `attend` takes a query, in float32, bfloat16 or float16 and
    returns, over the token axes (`...`, none for one token):

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

    `int8_activations=True` trades that exactness for speed on a Q4_K or Q6_K table: the
    hidden states are quantized to 8 bits per block of 256 values, as llama.cpp's Q8_K and
    MAX's `qmatmul` do, and the CPU's integer dot products are used; each logit is then within
    `ops.qmatmul`'s bound of the exact one. Dense tables and other formats stay exact, and so
    does the native backend on a CPU without AVX2.

    Over a `VocabParallelEmbedding` the head returns a list, one result per device (as the
    lookup does), each over the whole vocabulary with global ids. Each device dots the hidden
    states with the rows it owns (its shard of the one weight, never a copy of the table) and
    reduces them before anything crosses devices: `"argmax"` sends one `(value, id)` per token,
    `"top_k"` `k` of them (`ops.sharded_top_k`), `"logsumexp"` one `(max, sum)` pair
    (`ops.sharded_logsumexp`), and `"logits"` is an all-gather of the shards' logits
    (`ops.allgather`). Ids, values and logits are bit for bit the unsharded head's (each
    logit is summed in one order whatever rows a device holds); the log-sum-exp is within
    `ops.sharded_logsumexp`'s bound of it. The hidden states are one value (moved to every
    device) or a list of one value per device (as the lookup returns them; across the
    processes of a job, only this form: a value is not moved between processes). The values of
    such a list must be the same hidden states, replicated as tensor parallelism replicates
    them: each device's candidates are merged as if they were. Their dtypes and shapes are
    checked; their values are not compared. States that come from a `reduce="scatter"`
    lookup (each device other tokens), not gathered since, are refused.

    Raises (at construction):
        TypeError: `embedding` is not an embedding layer, or `int8_activations` is not a bool.
        ValueError: an unknown `output`; `k` missing or outside `[1, vocab]` for "top_k", or
            given for another output.
    """

    _unprefixed_sublayers = frozenset({"embedding"})
    """The table is the embedding's, under its name there (`raw_state_dict`)."""

    def __init__(
        self,
        embedding: EmbeddingV2 | VocabParallelEmbedding,
        *,
        output: Output = "logits",
        k: int | None = None,
        int8_activations: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(embedding, EmbeddingV2 | VocabParallelEmbedding):
            raise TypeError(
                "LMHead takes an EmbeddingV2, Embedding or VocabParallelEmbedding (for a table "
                f"array: LMHead(Embedding(table))), got a {described(embedding)}"
            )
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
        if not isinstance(int8_activations, bool):
            raise TypeError(f"LMHead: int8_activations must be a bool, got {int8_activations!r}")
        self.int8_activations = int8_activations

    def __call__(self, hidden: Any) -> Any:
        """The head's output for `hidden` (see the class); over a `VocabParallelEmbedding`, a
        list of one output per device.

        Raises:
            TypeError: `hidden` is not float32, bfloat16 or float16.
            ValueError: `hidden` is not of rank 1, 2 or 3, its width is not the table's,
                (top_k) `k` exceeds the vocabulary of an `Embedding(weights)` table, a list
                of hidden states for a table on one device, or (split table) a list that is
                not one per device, whose values differ in dtype or shape, or that come from
                a `reduce="scatter"` lookup.
        """
        if not isinstance(hidden, list | tuple) and ops.as_value(hidden).rank == 1:
            # one token's states, as Flax's `attend` takes a query: a batch of one, unbatched
            return _without_first_axis(self(ops.reshape(hidden, [1, -1])))
        if isinstance(hidden, list | tuple) and hidden:
            values = [ops.as_value(h) for h in hidden]
            if all(v.rank == 1 for v in values):  # one token's states on each device
                return _without_first_axis(self([ops.reshape(v, [1, -1]) for v in values]))
        table = self._table()
        if isinstance(self.embedding, VocabParallelEmbedding):
            return self._vocab_parallel(hidden, table)
        if isinstance(hidden, list | tuple):
            raise ValueError(
                "LMHead: a list of hidden states (one per device) is for a table split over "
                f"devices; this head's table is on one device: give one value, not a list of "
                f"{len(hidden)}"
            )
        states = self._states(hidden, table)
        vocab = table.shape[0]
        if self.k is not None and isinstance(vocab, StaticDim) and self.k > int(vocab):
            raise ValueError(f"LMHead: k must be in [1, {vocab}], got {self.k}")
        logits = self._logits(states.to(table.device), table)
        if self.output == "argmax":
            return ops.squeeze(ops.argmax(logits, axis=-1), -1)
        if self.output == "top_k":
            return ops.top_k(logits, self.k, axis=-1)
        if self.output == "logsumexp":
            return ops.squeeze(ops.logsumexp(logits, axis=-1), -1)
        return logits

    def _vocab_parallel(self, hidden: Any, table: TensorValue) -> list[Any]:
        """One output per device: each device's logits over its own rows, reduced to what the
        output needs before they cross devices."""
        embedding = self.embedding
        devices = embedding.devices
        if isinstance(hidden, list | tuple):
            if len(hidden) != len(devices):
                raise ValueError(
                    f"LMHead: {len(hidden)} hidden states for a table split over "
                    f"{len(devices)} devices; give one value, or one per device"
                )
            values = [ops.as_value(h) for h in hidden]
            if any(map(scattered, values)):
                raise ValueError(
                    'LMHead: the hidden states come from a reduce="scatter" lookup or a '
                    "reducescatter.sum, which leave each device other tokens; merging their "
                    "candidates would mix different tokens. Gather them first (ops.allgather, "
                    'for a static token count), or look them up with reduce="all"'
                )
            for other in values[1:]:  # replicas of the same states: their type says so at once
                if other.dtype != values[0].dtype or list(other.shape) != list(values[0].shape):
                    raise ValueError(
                        "LMHead: the hidden states of the devices must be the same states, "
                        f"replicated; got {values[0].dtype!r}{values[0].shape} and "
                        f"{other.dtype!r}{other.shape}"
                    )
            per_device = [
                self._states(h, table).to(d) for h, d in zip(values, devices, strict=True)
            ]
        else:
            states = self._states(hidden, table)
            per_device = [states.to(d) for d in devices]
        bounds = [embedding.shard_bounds(i) for i in range(len(devices))]
        logits = [
            self._logits(states, table[slice(*rows)].to(device))
            for states, rows, device in zip(per_device, bounds, devices, strict=True)
        ]
        if self.output == "argmax":
            return [ops.squeeze(ids, -1) for _, ids in ops.sharded_top_k(logits, 1)]
        if self.output == "top_k":
            return ops.sharded_top_k(logits, self.k)
        if self.output == "logsumexp":
            return [ops.squeeze(lse, -1) for lse in ops.sharded_logsumexp(logits)]
        return ops.allgather(logits, axis=-1)

    def _states(self, hidden: Any, table: TensorValue) -> TensorValue:
        """`hidden` checked against the table, as float32.

        Raises:
            TypeError: `hidden` is not float32, bfloat16 or float16.
            ValueError: `hidden` is not of rank 2 or 3, or its width is not the table's.
        """
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
                "LMHead: hidden states must be (hidden), (batch, hidden) or (batch, seq, "
                f"hidden), got shape {states.shape}"
            )
        if states.shape[-1] != width:
            stored = "" if encoding is None else f", {encoding.value}"
            raise ValueError(
                f"LMHead: hidden states of width {states.shape[-1]} do not match the table "
                f"({table.shape[0]} rows of {width} values{stored}): expected width {width}"
            )
        return states.cast(DType.float32)

    def _logits(self, states: TensorValue, table: TensorValue) -> TensorValue:
        """float32 logits of `states` against every row of `table` (on the table's device)."""
        encoding = self.embedding.quantization_encoding
        return row_products(states, table, encoding, self.int8_activations)

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


def _without_first_axis(result: Any) -> Any:
    """A one-token batch's output (a value, top-k's pair, or a list of them per device)
    without its batch axis."""
    if isinstance(result, list):
        return [_without_first_axis(r) for r in result]
    if isinstance(result, tuple):
        return tuple(ops.squeeze(r, 0) for r in result)
    return ops.squeeze(result, 0)
