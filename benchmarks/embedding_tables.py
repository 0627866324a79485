"""The embedding benchmarks' data: the Llama-3-sized table, id sets, quantized tables, and the
checks of a lookup's result against numpy and ``gguf.quants.dequantize``."""

from __future__ import annotations

import numpy as np

from ember.quant import FORMATS, GGUF_FORMATS

VOCAB, HIDDEN = 128256, 4096
THREADS = 2
QUANT_FORMATS = tuple(GGUF_FORMATS)  # checked against gguf's dequantize


def id_pool(n: int, ids: str = "fresh") -> list[np.ndarray]:
    """Sets of ``n`` random ids that every contender (and a MAX child process) cycles through.

    Fresh: each call looks up the next set, and one pass over the pool touches about VOCAB rows,
    so small lookups read rows from wherever the table is, not from a cache the last call
    warmed. Repeated: one set, looked up again each call.
    """
    sets = 1 if ids == "repeated" else max(2, -(-VOCAB // n))
    return list(np.random.default_rng(n).integers(0, VOCAB, (sets, n), dtype=np.int32))


def random_table(dtype: np.dtype, seed: int = 0) -> np.ndarray:
    """A VOCAB x HIDDEN table of standard normal values, filled in chunks to bound temporaries."""
    rng = np.random.default_rng(seed)
    table = np.empty((VOCAB, HIDDEN), dtype)
    for start in range(0, VOCAB, 8192):
        chunk = table[start : start + 8192]
        chunk[...] = rng.standard_normal(chunk.shape, dtype=np.float32).astype(dtype)
    return table


def ggml_type(fmt: str):
    """The gguf package's quantization type for a format name such as ``q4_k``."""
    import gguf

    return gguf.GGMLQuantizationType[fmt.upper()]


def row_bytes(fmt: str) -> int:
    """Bytes of one quantized row of HIDDEN values."""
    import gguf

    elements, block = gguf.GGML_QUANT_SIZES[ggml_type(fmt)]
    return HIDDEN // elements * block


def quant_table(fmt: str, seed: int = 0) -> np.ndarray:
    """A (VOCAB, row_bytes) uint8 table in ``fmt``: gguf quantizes where it can, else ember."""
    import gguf

    sample = np.random.default_rng(seed).standard_normal((2048, HIDDEN), dtype=np.float32)
    try:
        blocks = gguf.quants.quantize(sample, ggml_type(fmt))
    except NotImplementedError:
        blocks = FORMATS[fmt].quantize(sample)
    return np.resize(blocks, (VOCAB, row_bytes(fmt)))


def check_quant(out: np.ndarray, table: np.ndarray, ids: np.ndarray, fmt: str) -> str:
    """Compares sampled rows of a quantized lookup with gguf's dequantize bit for bit (``==``
    would pass -0.0 for 0.0 and fail a NaN the lookup got right); '' when exact."""
    import gguf

    if out.shape != (ids.size, HIDDEN):
        return f"wrong shape {out.shape}"
    picks = np.unique(np.linspace(0, ids.size - 1, min(ids.size, 256)).astype(np.int64))
    ref = gguf.quants.dequantize(table[ids[picks]], ggml_type(fmt))
    ref = np.ascontiguousarray(ref, np.float32)
    got = np.ascontiguousarray(out[picks], np.float32)
    differ = got.view(np.uint32) != ref.view(np.uint32)
    bad = differ.any(axis=1)
    if not bad.any():
        return ""
    row = int(np.argmax(bad))
    col = int(np.argmax(differ[row]))
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(got[differ].astype(np.float64) - ref[differ])
    finite = err[np.isfinite(err)]
    worst = f"max |err| {finite.max():.3g}" if finite.size else "no finite |err|"
    bits = [
        f"{float(x)!r} ({int(x.view(np.uint32)):#010x})" for x in (got[row, col], ref[row, col])
    ]
    return (
        f"WRONG VALUES: {int(bad.sum())}/{picks.size} sampled rows differ in their bits "
        f"({int(differ.sum())} values, {worst}); first at id {int(ids[picks[row]])}, "
        f"column {col}: got {bits[0]}, want {bits[1]}"
    )


def same_bytes(got: np.ndarray, ref: np.ndarray) -> bool:
    """True when two arrays have the same shape, item size and bytes (bf16 in any guise)."""
    return (
        got.shape == ref.shape
        and got.dtype.itemsize == ref.dtype.itemsize
        and np.array_equal(
            np.ascontiguousarray(got).view(np.uint8), np.ascontiguousarray(ref).view(np.uint8)
        )
    )
