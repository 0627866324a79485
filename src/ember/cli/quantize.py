"""`ember quantize`: a checkpoint's table written as a quantized GGUF file (gguf's writer)."""

from __future__ import annotations

import argparse

import numpy as np

__all__ = ["quantize"]

_ROWS_PER_STEP = 4096


def quantize(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from ember.quant import FORMATS
    from ember.weights import load

    from . import UsageError
    from .tables import pick_table

    writable = [name for name, f in FORMATS.items() if f.quantizable]
    fmt = FORMATS.get(args.format)
    if fmt is None:
        raise UsageError(f"unknown format {args.format!r}; ember writes: {', '.join(writable)}")
    if not fmt.quantizable:
        raise UsageError(
            f"ember reads {fmt.name} but does not write it (it needs llama.cpp's importance-matrix "
            f"search: use llama-quantize); ember writes: {', '.join(writable)}"
        )
    try:
        import gguf
    except ImportError:
        raise UsageError("writing GGUF needs the gguf package: pip install gguf") from None
    data = pick_table(load(args.path), args.tensor)
    if data.is_quantized or data.array.dtype.kind != "f":
        raise UsageError(f"{data.name!r} holds {data.kind} values; quantize a float table")
    rows, width = data.array.shape
    if width % fmt.block_elements:
        raise UsageError(
            f"{fmt.name} blocks hold {fmt.block_elements} values; rows of {width} do not divide"
        )
    blocks = np.empty((rows, width // fmt.block_elements * fmt.block_bytes), np.uint8)
    with Progress() as progress:
        task = progress.add_task(f"{data.name} -> {fmt.name}", total=rows)
        for start in range(0, rows, _ROWS_PER_STEP):
            stop = min(rows, start + _ROWS_PER_STEP)
            blocks[start:stop] = fmt.quantize(np.asarray(data.array[start:stop], np.float32))
            progress.update(task, completed=stop)
    writer = gguf.GGUFWriter(args.output, "ember")
    writer.add_tensor(data.name, blocks, raw_dtype=gguf.GGMLQuantizationType(fmt.ggml_type))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"wrote {data.name} ({rows} x {width}) as {fmt.name} to {args.output}")
    return 0
