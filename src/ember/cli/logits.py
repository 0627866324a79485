"""`ember logits`: a checkpoint's LM head (its tied embedding table, or its one untied head)
over hidden states from a `.npy` file: top-k, greedy ids, log-sum-exp or full logits."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping

import numpy as np

from ember.weights import WeightData

__all__ = ["logits"]

UNTIED_HEADS = ("output.weight", "lm_head.weight")
"""The names llama.cpp and Hugging Face give a head that is not the embedding table."""


def logits(args: argparse.Namespace) -> int:
    from ember.nn.lm_head import HIDDEN_DTYPES
    from ember.weights import checkpoint_file, load

    from . import UsageError
    from .output import checked_npy_output, json_values, printable, save_npy

    out = None if args.out is None else checked_npy_output("--out", args.out, args.force)
    hidden = _hidden_states(args.hidden)
    data = head_table(load(checkpoint_file(args.path)), args.tensor)
    if not data.is_quantized and data.dtype not in HIDDEN_DTYPES:
        raise UsageError(
            f"{data.name} holds {data.kind} values; the head takes a table of "
            f"{_names(HIDDEN_DTYPES)} values, or a quantized GGUF one"
        )
    vocab, width = data.shape
    if hidden.shape[-1] != width:
        raise UsageError(
            f"{args.hidden} holds hidden states of width {hidden.shape[-1]}; the head "
            f"{data.name} ({vocab} x {width}) takes width {width}"
        )
    output, k = _output(args)
    if k is not None and k > vocab:
        raise UsageError(f"--top-k {k} is more than the {vocab} rows of {data.name}")
    results = _run_head(data, hidden, output, k, args.backend)
    tokens = hidden.shape[:-1]
    if out is not None:
        save_npy(out, results[0])
        print(
            printable(f"wrote {results[0].shape} {results[0].dtype} logits of {data.name} to {out}")
        )
    elif args.format == "json":
        fields = dict(zip(_FIELDS[output], map(json_values, results), strict=True))
        json.dump({"tensor": data.name, "output": output, **fields}, sys.stdout, allow_nan=False)
        print()
    else:
        _print_table(data.name, vocab, output, tokens, results)
    return 0


def head_table(weights: Mapping[str, WeightData], name: str | None) -> WeightData:
    """The tensor called `name`; else the file's one untied head (`output.weight`,
    `lm_head.weight`); else its embedding table, which a tied model's head reads.

    Raises:
        UsageError: as `pick_table`, or several untied heads.
    """
    from . import UsageError
    from .tables import pick_table

    if name is None:
        unreadable = getattr(weights, "unreadable", {})  # found, so that pick_table says why
        heads = [n for n in UNTIED_HEADS if n in weights or n in unreadable]
        if len(heads) > 1:
            raise UsageError(f"found several heads: {', '.join(heads)}; name one with --tensor")
        name = heads[0] if heads else None
    return pick_table(weights, name)


def _hidden_states(path: str) -> np.ndarray:
    """The array in `path`: (hidden,), (tokens, hidden) or (batch, seq, hidden) floats.

    Raises:
        FileNotFoundError: no such file.
        UsageError: not a .npy array, an array of another dtype or rank.
    """
    import ml_dtypes

    from ember.nn.lm_head import HIDDEN_DTYPES

    from . import UsageError

    try:
        hidden = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"no file at '{path}'") from None
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    except (ValueError, EOFError):  # numpy's own words advise allow_pickle: not for a user here
        raise UsageError(
            f"cannot read {path}: {_not_numeric_npy(path)}; give a numeric .npy array "
            f"(numpy.save of {_names(HIDDEN_DTYPES)} values)"
        ) from None
    if not isinstance(hidden, np.ndarray):
        raise UsageError(f"{path} is an .npz archive; give one array saved with numpy.save")
    if hidden.dtype == np.dtype("V2"):  # .npy records ml_dtypes' bfloat16 as 2-byte void
        hidden = hidden.view(ml_dtypes.bfloat16)
    if hidden.dtype.kind == "f" and not hidden.dtype.isnative:  # big-endian: the same values
        hidden = hidden.astype(hidden.dtype.newbyteorder("="))
    if hidden.dtype not in (np.float32, np.float16, ml_dtypes.bfloat16):
        hint = " (cast with .astype(numpy.float32))" if hidden.dtype.kind == "f" else ""
        raise UsageError(
            f"{path} holds {hidden.dtype} values; the head takes {_names(HIDDEN_DTYPES)}{hint}"
        )
    if hidden.ndim not in (1, 2, 3) or hidden.shape[-1] == 0:
        raise UsageError(
            f"{path} has shape {hidden.shape}; the head takes (hidden,), (tokens, hidden) or "
            "(batch, seq, hidden)"
        )
    return hidden


def _not_numeric_npy(path: str) -> str:
    """Why `np.load` refused `path`: not a .npy file, a pickled object array, or a damaged
    one."""
    fmt = np.lib.format
    with open(path, "rb") as file:
        try:
            version = fmt.read_magic(file)
        except (ValueError, EOFError, OSError):
            return "it is not a .npy file"
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        try:
            dtype = read_header(file)[2]
        except (ValueError, EOFError, OSError):
            return "its header is damaged or cut short"
    if dtype.hasobject:
        return "it holds pickled Python objects"
    return "it is damaged or cut short"


def _names(dtypes: tuple) -> str:
    """'float32, bfloat16 or float16'."""
    names = [repr(d) for d in dtypes]
    return f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]


_FIELDS = {"top_k": ("values", "ids"), "argmax": ("ids",), "logsumexp": ("logsumexp",)}
"""The JSON fields of each output, in the order the head returns them."""


def _output(args: argparse.Namespace) -> tuple[str, int | None]:
    if args.out is not None:
        return "logits", None
    if args.argmax:
        return "argmax", None
    if args.logsumexp:
        return "logsumexp", None
    return "top_k", args.top_k


def _run_head(
    data: WeightData, hidden: np.ndarray, output: str, k: int | None, backend: str
) -> list[np.ndarray]:
    import ember.nn as nn
    from ember.dtype import DType
    from ember.engine import InferenceSession
    from ember.graph import Graph, TensorType

    from . import UsageError

    try:
        session = InferenceSession(backend=backend)
    except ImportError:
        raise UsageError(f"--backend {backend} needs jax: pip install 'ember[xla]'") from None
    head = nn.LMHead(nn.EmbeddingV2.from_weight(data, name="table"), output=output, k=k)
    axes = ["batch", "seq"][: hidden.ndim - 1]
    dtype = DType.from_numpy(hidden.dtype)
    with Graph("logits", input_types=[TensorType(dtype, [*axes, hidden.shape[-1]])]) as graph:
        result = head(graph.inputs[0])
        graph.output(*(result if isinstance(result, tuple) else [result]))
    model = session.load(graph, weights_registry={"table": data})
    return [tensor.to_numpy() for tensor in model.execute(hidden)]


def _print_table(
    name: str, vocab: int, output: str, tokens: tuple[int, ...], results: list[np.ndarray]
) -> None:
    from rich.table import Table

    from .output import console as piped_console

    if not tokens:  # one (hidden,) vector: one row of the table
        tokens, results = (1,), [r[None] for r in results]
    count = int(np.prod(tokens))
    console = piped_console(highlight=False)
    # Rich wraps a title at the table's width, which two narrow columns make small: the title
    # stays a word or two, and what the table is of goes on a line of its own above it.
    console.print(f"{name}, {vocab} rows; {count} token{'' if count == 1 else 's'}", markup=False)
    title = {"top_k": f"top {results[0].shape[-1]}", "argmax": "greedy ids"}.get(output)
    table = Table(title=title or "log-sum-exp")
    table.add_column("token", justify="right")
    for column in _FIELDS[output][::-1]:  # ids before their values
        table.add_column(column, justify="right" if output != "top_k" else "left")
    rows = [r.reshape(count, *r.shape[len(tokens) :]) for r in results[::-1]]
    for position, cells in zip(np.ndindex(*tokens), zip(*rows, strict=True), strict=True):
        table.add_row(",".join(map(str, position)), *(_cell(c) for c in cells))
    console.print(table)


def _cell(value: np.ndarray) -> str:
    if value.dtype == np.int64:
        return " ".join(str(int(v)) for v in np.atleast_1d(value))
    return " ".join(f"{float(v):.4f}" for v in np.atleast_1d(value))
