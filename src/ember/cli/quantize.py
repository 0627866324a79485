"""`ember quantize`: a checkpoint's table written as a quantized GGUF file (gguf's writer)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

__all__ = ["quantize"]

_ROWS_PER_STEP = 4096


def quantize(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.progress import Progress

    from ember.quant import FORMATS
    from ember.weights import checkpoint_file, load

    from . import UsageError
    from .output import console, printable
    from .tables import pick_table

    fmt = FORMATS[args.format]  # checked by `arguments.gguf_format`
    try:
        import gguf  # noqa: F401  (checked before the table is read and quantized)
    except ImportError:
        raise UsageError("writing GGUF needs the gguf package: pip install gguf") from None
    source = checkpoint_file(args.path)
    output = _checked_output(source, args.output, args.force)
    data = pick_table(load(source), args.tensor)
    if data.is_quantized or not data.dtype.is_float():
        raise UsageError(f"{data.name!r} holds {data.kind} values; quantize a float table")
    rows, width = data.array.shape
    if width % fmt.block_elements:
        raise UsageError(
            f"{fmt.name} blocks hold {fmt.block_elements} values; rows of {width} do not divide"
        )
    blocks = np.empty((rows, width // fmt.block_elements * fmt.block_bytes), np.uint8)
    with Progress(console=console()) as progress:  # a closed pipe: status 141, as elsewhere
        task = progress.add_task(escape(printable(f"{data.name} -> {fmt.name}")), total=rows)
        for start in range(0, rows, _ROWS_PER_STEP):
            stop = min(rows, start + _ROWS_PER_STEP)
            blocks[start:stop] = fmt.quantize(np.asarray(data.array[start:stop], np.float32))
            progress.update(task, completed=stop)
    _write_gguf(output, data.name, blocks, fmt.ggml_type)
    print(printable(f"wrote {data.name} ({rows} x {width}) as {fmt.name} to {output}"))
    return 0


def _checked_output(source: Path, output: str, force: bool) -> Path:
    """The output path, checked before any quantizing: never one of the checkpoint's own files
    (even with --force), then as every command's output is (`checked_output`).

    Raises:
        UsageError: the output is an input file, exists without --force, is a folder, or its
            folder is missing or read-only.
    """
    from . import UsageError
    from .output import checked_output

    target = Path(output)
    if target.is_file() and any(target.samefile(f) for f in _checkpoint_files(source)):
        raise UsageError(f"-o {str(target)!r} is the checkpoint being read; write to another file")
    return checked_output("-o", output, target, force, ".gguf")


def _checkpoint_files(source: Path) -> list[Path]:
    """The files `load(source)` maps: the file, or the files of its folder (model folder,
    sharded index)."""
    if source.is_dir():
        return [f for f in source.iterdir() if f.is_file()]
    if source.suffix == ".json":
        return [source, *(f for f in source.parent.iterdir() if f.is_file())]
    return [source] if source.exists() else []


def _write_gguf(output: Path, name: str, blocks: np.ndarray, ggml_type: int) -> None:
    """The one-tensor GGUF file, written through a rename."""
    import gguf

    from .output import write_through_rename

    def write(partial: Path) -> None:
        writer = gguf.GGUFWriter(partial, "ember")
        writer.add_tensor(name, blocks, raw_dtype=gguf.GGMLQuantizationType(ggml_type))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()

    write_through_rename(output, write)
