"""`ember inspect`: a checkpoint's tensors in a table, embedding tables marked."""

from __future__ import annotations

import argparse

__all__ = ["inspect"]


def inspect(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ember.weights import checkpoint_file, load

    from .output import console
    from .tables import is_embedding

    weights = load(checkpoint_file(args.path))
    total = len(weights) + len(weights.unreadable)
    count = f"{total} tensor" + ("" if total == 1 else "s")
    table = Table(title=f"{args.path}: {count}")
    for column in ("tensor", "type", "shape", "bytes", ""):
        table.add_column(column, justify="right" if column == "bytes" else "left")
    for name, data in weights.items():
        mark = "token embedding" if is_embedding(name) else ""
        shape = " x ".join(str(d) for d in data.shape)
        table.add_row(name, data.kind, shape, f"{data.nbytes:,}", mark)
    for name in weights.unreadable:
        table.add_row(name, "not read", "", "", "a dtype graphs cannot hold")
    console().print(table)
    return 0
