"""Reading safetensors checkpoints zero-copy: every tensor is a read-only numpy array over a
memory map of its file, bfloat16 and float8 included (as `ml_dtypes` types, which the
`safetensors` package's numpy loader cannot return; it also copies). A single file, a sharded
checkpoint's `model.safetensors.index.json`, or a Hugging Face model folder.

Layout of a file: an 8-byte little-endian unsigned length N, then N bytes of UTF-8 JSON
`{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}`,
then the data area; offsets are byte offsets into the data area (from the end of the header),
little-endian, row-major. An index is JSON whose `weight_map` maps each tensor name to the file
(beside the index) that holds it.

Files are untrusted: the header is checked in full before anything is mapped, and every flaw is
one `CheckpointError` naming the file and the problem, never a crash, an overread or an
allocation larger than the header (which is capped at 100 MB).
"""

from __future__ import annotations

import json
import math
import mmap
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import ml_dtypes
import numpy as np

from ember.weights.access import advise_random
from ember.weights.byte_counts import overflows_numpy
from ember.weights.errors import CheckpointError

__all__ = ["read_safetensors"]

MAX_HEADER_BYTES = 100_000_000  # as the reference implementation: larger is not a checkpoint
MAX_NDIM = 64  # numpy's limit
INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"

DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "C64": np.dtype("<c8"),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "F8_E4M3FNUZ": np.dtype(ml_dtypes.float8_e4m3fnuz),
    "F8_E5M2FNUZ": np.dtype(ml_dtypes.float8_e5m2fnuz),
    "F8_E8M0": np.dtype(ml_dtypes.float8_e8m0fnu),
}
"""Each safetensors dtype code ember reads, and the numpy dtype of its arrays."""

_PACKED = frozenset({"F4", "F6_E2M3", "F6_E3M2"})  # sub-byte elements: no numpy view without a copy


class _Entry(NamedTuple):
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    begin: int
    end: int


def read_safetensors(
    path: str | os.PathLike | Sequence[str | os.PathLike],
) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file, a sharded checkpoint's index .json, a model folder,
    or a list of any of them, by name: read-only arrays mapping the file(s) (no copy), of their
    dtype (ml_dtypes for bfloat16 and float8) and shape.

    A folder is read through its `model.safetensors.index.json` if it has one, else its
    `model.safetensors`, else all its `*.safetensors` files (by name).

    Raises:
        CheckpointError: a file is missing, unreadable or malformed; a name is in two files; an
            index's `weight_map` is malformed or names a tensor its shard lacks.
    """
    if isinstance(path, (list, tuple)):
        if not path:
            raise CheckpointError("no safetensors files given: the list is empty")
        return _merge((Path(os.fspath(p)), read_safetensors(p)) for p in path)
    target = Path(os.fspath(path))
    if target.is_dir():
        return _read_folder(target)
    if target.name.endswith(".json"):
        return _read_index(target)
    return _read_file(target)


def _fail(file: Path, problem: str) -> NoReturn:
    raise CheckpointError(f"{file}: {problem}")


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value: object) -> str:
    """The JSON name of a parsed value's type, for messages."""
    for kind, types in (
        ("a boolean", bool),
        ("a number", (int, float)),
        ("a string", str),
        ("an array", list),
        ("an object", dict),
    ):
        if isinstance(value, types):
            return kind
    return "null"


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _parse_json(file: Path, raw: bytes, what: str) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(file, f"{what} is not valid UTF-8 (byte {exc.start})")
    try:
        parsed = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        _fail(file, f"{what} has the key {_short(exc.args[0])} twice")
    except RecursionError:
        _fail(file, f"{what} nests JSON too deeply")
    except ValueError as exc:  # JSONDecodeError, or an integer literal too long to convert
        _fail(file, f"{what} is not valid JSON ({_short(str(exc), 120)})")
    if not isinstance(parsed, dict):
        _fail(file, f"{what} is {_kind(parsed)}, not a JSON object")
    return parsed


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_entry(file: Path, name: str, info: object, data_size: int) -> _Entry:
    where = f"tensor {_short(name)}"
    if not isinstance(info, dict):
        _fail(file, f"{where} is {_kind(info)}, not an object with dtype, shape, data_offsets")
    missing = [key for key in ("dtype", "shape", "data_offsets") if key not in info]
    if missing:
        _fail(file, f"{where} has no {', '.join(missing)}")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(code, str):
        _fail(file, f"{where}: dtype is {_kind(code)}, not a string")
    dtype = DTYPES.get(code)
    if dtype is None:
        known = ", ".join(DTYPES)
        if code in _PACKED:
            _fail(file, f"{where}: dtype {code} packs sub-byte elements; ember reads {known}")
        _fail(file, f"{where}: unknown dtype {_short(code)}; known: {known}")
    if not isinstance(shape, list) or not all(_is_int(dim) for dim in shape):
        _fail(file, f"{where}: shape {_short(shape)} is not an array of integers")
    if len(shape) > MAX_NDIM:
        _fail(file, f"{where}: shape has {len(shape)} dimensions, more than {MAX_NDIM}")
    if any(dim < 0 for dim in shape):
        _fail(file, f"{where}: shape {_short(shape)} has a negative dimension")
    if overflows_numpy(shape, dtype.itemsize):
        _fail(file, f"{where}: shape {_short(shape)} of {code} overflows a 64-bit byte count")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_int, offsets))):
        _fail(file, f"{where}: data_offsets {_short(offsets)} is not [begin, end] in integers")
    begin, end = offsets
    if not 0 <= begin <= end <= data_size:
        _fail(
            file,
            f"{where}: data_offsets [{begin}, {end}] fall outside the data area of {data_size} "
            "bytes (or end before they begin)",
        )
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes != end - begin:
        _fail(
            file,
            f"{where}: shape {_short(shape)} of {code} is {nbytes} bytes, but data_offsets "
            f"[{begin}, {end}] hold {end - begin}",
        )
    return _Entry(name, dtype, tuple(shape), begin, end)


def _parse_header(file: Path, raw: bytes, data_size: int) -> list[_Entry]:
    header = _parse_json(file, raw, "header")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not isinstance(metadata, dict):
        _fail(file, f"__metadata__ is {_kind(metadata)}, not an object")
    entries = [_parse_entry(file, name, info, data_size) for name, info in header.items()]
    due, last = 0, None  # the data area is the tensors' bytes, in order, nothing between
    for e in sorted(entries, key=lambda e: (e.begin, e.end)):
        if e.begin < due and e.end > e.begin:  # `last` holds the bytes up to `due`
            _fail(
                file,
                f"tensors {_short(last.name)} [{last.begin}, {last.end}] and "
                f"{_short(e.name)} [{e.begin}, {e.end}] overlap",
            )
        if e.begin != due:
            _fail(
                file,
                f"tensor {_short(e.name)} begins at byte {e.begin} of the data area, where "
                f"{due} was due; a file's tensors cover its data with no gaps",
            )
        if e.end > e.begin:
            due, last = e.end, e
    if due != data_size:
        _fail(file, f"{data_size - due} bytes after the last tensor belong to no tensor")
    return entries


def _read_file(file: Path) -> dict[str, np.ndarray]:
    try:
        with open(file, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                _fail(file, "not a regular file")
            size = info.st_size
            if size < 8:
                _fail(file, f"{size} bytes, too short for the 8-byte header length")
            length = int.from_bytes(handle.read(8), "little")
            if length > MAX_HEADER_BYTES:
                _fail(file, f"header length {length} exceeds the limit of {MAX_HEADER_BYTES}")
            if length > size - 8:
                _fail(file, f"header length {length} exceeds the {size - 8} bytes after it")
            raw = handle.read(length)
            if len(raw) != length:
                _fail(file, "file shrank while being read")
            start = 8 + length
            entries = _parse_header(file, raw, size - start)
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        _fail(file, "no such file")
    except OSError as exc:
        _fail(file, f"cannot read ({exc.strerror or exc})")
    if len(mapped) < size:
        _fail(file, "file shrank while being read")
    advise_random(mapped)
    return {
        e.name: np.ndarray(e.shape, dtype=e.dtype, buffer=mapped, offset=start + e.begin)
        for e in entries
    }


def _merge(files: Iterable[tuple[Path, dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
    tensors: dict[str, np.ndarray] = {}
    origin: dict[str, Path] = {}
    for file, found in files:
        for name, array in found.items():
            if name in tensors:
                _fail(file, f"tensor {_short(name)} is also in {origin[name]}")
            tensors[name] = array
            origin[name] = file
    return tensors


def _read_index(index: Path) -> dict[str, np.ndarray]:
    try:
        with open(index, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                _fail(index, "not a regular file")
            raw = handle.read(MAX_HEADER_BYTES + 1)
    except FileNotFoundError:
        _fail(index, "no such file")
    except OSError as exc:
        _fail(index, f"cannot read ({exc.strerror or exc})")
    if len(raw) > MAX_HEADER_BYTES:
        _fail(index, f"index is over the limit of {MAX_HEADER_BYTES} bytes")
    weight_map = _parse_json(index, raw, "index").get("weight_map")
    if not isinstance(weight_map, dict):
        _fail(index, f"weight_map is {_kind(weight_map)}, not an object of tensor: file")
    if not weight_map:
        _fail(index, "weight_map names no tensors")
    shards: dict[str, list[str]] = {}
    for name, shard in weight_map.items():
        if not isinstance(shard, str) or not shard:
            _fail(index, f"weight_map[{_short(name)}] is {_short(shard)}, not a file name")
        if os.path.isabs(shard) or ".." in shard.replace("\\", "/").split("/"):
            _fail(index, f"weight_map[{_short(name)}] = {_short(shard)} leaves the index's folder")
        shards.setdefault(os.path.normpath(shard), []).append(name)

    def read_shards() -> Iterable[tuple[Path, dict[str, np.ndarray]]]:
        for shard, names in shards.items():
            file = index.parent / shard
            if not file.exists():
                _fail(index, f"shard {_short(shard)} (of {_short(names[0])}) is missing: no {file}")
            found = _read_file(file)
            absent = [name for name in names if name not in found]
            if absent:
                _fail(
                    index,
                    f"weight_map puts {len(absent)} tensor(s) in {_short(shard)}, which lacks "
                    f"them: {_short(absent)}",
                )
            yield file, found

    return _merge(read_shards())


def _read_folder(folder: Path) -> dict[str, np.ndarray]:
    if (folder / INDEX_NAME).is_file():
        return _read_index(folder / INDEX_NAME)
    if (folder / SINGLE_NAME).is_file():
        return _read_file(folder / SINGLE_NAME)
    try:
        names = sorted(
            entry.name
            for entry in os.scandir(folder)
            if entry.name.endswith(".safetensors") and entry.is_file()
        )
    except OSError as exc:
        _fail(folder, f"cannot list ({exc.strerror or exc})")
    if not names:
        _fail(folder, f"folder has no {INDEX_NAME}, {SINGLE_NAME} or other *.safetensors file")
    return _merge((folder / name, _read_file(folder / name)) for name in names)
