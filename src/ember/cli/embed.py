"""`ember embed`: look ids (or a text's tokens) up in a checkpoint's embedding table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

__all__ = ["embed"]

_SHOWN = 8
"""Values shown per vector in the table; the rest are summarized by the vector's norm."""


def embed(args: argparse.Namespace) -> int:
    import ember.nn as nn
    from ember.dtype import DType
    from ember.engine import InferenceSession
    from ember.graph import DeviceRef, Graph, TensorType
    from ember.weights import checkpoint_file, load

    from . import UsageError
    from .output import checked_npy_output, json_values, printable, save_npy
    from .tables import pick_table

    fmt = args.format or ("npy" if args.output is not None else "table")
    output = None
    if fmt == "npy":  # the file is checked before the checkpoint is read
        output = checked_npy_output("-o", args.output, args.force)
    path = checkpoint_file(args.path)
    ids = _ids(args, path)
    data = pick_table(load(path), args.tensor)
    if args.devices > data.shape[0]:
        raise UsageError(
            f"--devices {args.devices} is more than the {data.shape[0]} rows of {data.name}, "
            "which the devices share"
        )
    if args.devices == 1:
        layer = nn.EmbeddingV2.from_weight(data, name="table")
    else:
        devices = [DeviceRef.CPU(i) for i in range(args.devices)]
        layer = nn.VocabParallelEmbedding.from_weight(data, devices, name="table")
    with Graph("embed", input_types=[TensorType(DType.int64, ["n"])]) as graph:
        out = layer(graph.inputs[0])
        graph.output(out[0] if isinstance(out, list) else out)
    model = InferenceSession().load(graph, weights_registry={"table": data})
    vectors = model.execute(ids)[0].to_numpy()
    if output is not None:
        save_npy(output, vectors)
        print(
            printable(f"wrote {vectors.shape} {vectors.dtype} vectors of {data.name} to {output}")
        )
    elif fmt == "json":
        fields = {"tensor": data.name, "ids": ids.tolist(), "vectors": json_values(vectors)}
        json.dump(fields, sys.stdout, allow_nan=False)
        print()
    else:
        _print_table(data.name, ids, vectors)
    return 0


def _ids(args: argparse.Namespace, path: Path) -> np.ndarray:
    if args.text is not None:
        from .text import text_ids

        return text_ids(args.text, path, args.tokenizer)
    return np.asarray(args.ids, np.int64)  # parsed and checked against int64 by `id_list`


def _print_table(name: str, ids: np.ndarray, vectors: np.ndarray) -> None:
    from rich.table import Table

    from .output import console

    width = vectors.shape[1]
    count = f"{len(ids)} vector{'' if len(ids) == 1 else 's'}"
    table = Table(title=f"{name}: {count} of {width} values ({vectors.dtype})")
    table.add_column("id", justify="right")
    table.add_column(f"first {min(_SHOWN, width)} values")
    table.add_column("norm", justify="right")
    for token, vector in zip(ids, vectors, strict=True):
        head = " ".join(f"{v: .4f}" for v in vector[:_SHOWN].astype(np.float64))
        norm = float(np.linalg.norm(vector.astype(np.float64)))
        table.add_row(str(token), head + (" ..." if width > _SHOWN else ""), f"{norm:.4f}")
    console().print(table)
