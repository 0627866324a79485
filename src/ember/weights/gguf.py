"""ember's GGUF reader: the header and the tensor index over a read-only ``np.memmap``.

Why not ``gguf.GGUFReader``: it parses every metadata value into numpy views, so opening a
250 MB Gemma file walks all 262,144 vocabulary strings into Python objects (seconds, hundreds of
MB). ember needs the tensor index only: this reads the header, keeps scalar and string metadata,
leaves each array as a marker ``("array", element_type, count)`` without parsing its items, and
maps the data without reading it. The file is untrusted: every length, count, type, shape and
offset is checked against the file before it is used, and every flaw is one
:class:`~ember.weights.errors.CheckpointError` naming the file (no overread, no huge allocation).

Layout (little-endian; versions 2 and 3; ``str`` = u64 byte length + UTF-8 bytes)::

    "GGUF" | version u32 | n_tensors u64 | n_kv u64                 header, 24 bytes
    n_kv x        key str | value_type u32 | value                  metadata
                  (an array value: element_type u32 | count u64 | items)
    n_tensors x   name str | n_dims u32 | dims u64 x n_dims (fastest first) | type u32 | offset u64
    zero padding up to a multiple of ``general.alignment`` (default 32) = data start
    data: each tensor at data start + offset (a multiple of the alignment)

>>> import os, struct, tempfile
>>> s = lambda b: struct.pack("<Q", len(b)) + b
>>> head = b"GGUF" + struct.pack("<IQQ", 3, 1, 1)
>>> kv = s(b"general.name") + struct.pack("<I", 8) + s(b"toy")
>>> info = s(b"w") + struct.pack("<I2QIQ", 2, 3, 2, 0, 0)  # dims (3, 2) fastest first, F32
>>> blob = head + kv + info
>>> blob += bytes(-len(blob) % 32) + np.arange(6, dtype="<f4").tobytes()
>>> tmp = tempfile.TemporaryDirectory()
>>> path = os.path.join(tmp.name, "toy.gguf")
>>> with open(path, "wb") as f:
...     _ = f.write(blob)
>>> g = read_gguf(path)
>>> g.metadata, g.tensors["w"].shape, g.tensors["w"].offset
({'general.name': 'toy'}, (2, 3), 128)
>>> g.array("w")
array([[0., 1., 2.],
       [3., 4., 5.]], dtype=float32)
>>> del g; tmp.cleanup()
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from itertools import pairwise
from math import prod

import numpy as np

from ember.quant import BY_GGML_TYPE, PLAIN_GGML_TYPES
from ember.weights.access import advise_random
from ember.weights.byte_counts import I64_MAX, overflows_numpy
from ember.weights.errors import CheckpointError

__all__ = ["GGUFFile", "GGUFTensor", "read_gguf"]

_MAGIC = b"GGUF"
_VERSIONS = (2, 3)
_HEADER_BYTES = 24
_DEFAULT_ALIGNMENT = 32
_MAX_DIMS = 4
_MAX_ARRAY_DEPTH = 3  # an array of arrays of arrays; deeper is not a real file
_MAX_NAME_BYTES = (1 << 16) - 1  # the spec's bound on keys; tensor names are far shorter
_ARRAY, _STRING = 9, 8
# The fewest bytes one metadata entry (key str, type, 1-byte value) and one tensor info
# (name str, n_dims, type, offset) can take: bounds the counts before any loop runs.
_MIN_KV_BYTES, _MIN_INFO_BYTES = 8 + 4 + 1, 8 + 4 + 4 + 8

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_SCALARS: dict[int, struct.Struct] = {
    vtype: struct.Struct("<" + code)
    for vtype, code in {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?"}.items()
} | {10: struct.Struct("<Q"), 11: struct.Struct("<q"), 12: struct.Struct("<d")}

# GGML type names, for error messages only (sizes come from ember.quant).
# fmt: off
_GGML_NAMES = dict(enumerate((
    "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K",
    "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S",
    "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16", "Q4_0_4_4",
    "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4",
    "NVFP4", "Q1_0",
)))
# fmt: on


@dataclass(frozen=True)
class GGUFTensor:
    """One entry of the tensor index."""

    name: str
    type_id: int
    """The GGML type id."""
    shape: tuple[int, ...]
    """Logical shape in numpy order: the file's dims reversed, e.g. ``(rows, cols)``."""
    offset: int
    """Absolute byte offset of the data in the file."""
    nbytes: int


@dataclass(frozen=True, eq=False)  # eq=False: a mapping compares by identity, not elementwise
class GGUFFile:
    """An opened GGUF file: its index and metadata, and the whole file mapped read-only."""

    path: str
    data: np.memmap
    """The whole file, read-only uint8."""
    tensors: dict[str, GGUFTensor]
    """In file order."""
    metadata: dict[str, object]
    """Scalars and strings as values; an array as ``("array", element_type, count)``. A
    string value that is not UTF-8 keeps its bytes as lone surrogates (``surrogateescape``:
    ``value.encode("utf-8", "surrogateescape")`` gives them back)."""
    alignment: int

    def array(self, name: str) -> np.ndarray:
        """The tensor's bytes as a zero-copy read-only view: for plain types, of its dtype and
        logical shape; for block-quantized types, uint8 of shape ``(rows..., row_bytes)`` where
        ``row_bytes = cols // block_elements * block_bytes``.

        Raises:
            KeyError: no tensor called ``name``.
        """
        t = self.tensors[name]
        fmt = BY_GGML_TYPE.get(t.type_id)
        if fmt is None:
            dtype, shape = np.dtype(PLAIN_GGML_TYPES[t.type_id].to_numpy()), t.shape
        else:
            cols = t.shape[-1] if t.shape else 1
            dtype = np.dtype(np.uint8)
            shape = (*t.shape[:-1], cols // fmt.block_elements * fmt.block_bytes)
        return np.ndarray(shape, dtype, buffer=self.data, offset=t.offset)

    def metadata_array(self, key: str) -> list[str] | np.ndarray:
        """The items of the array metadata ``key``, which the index keeps as a marker only:
        strings as a list of ``str``, numbers as a numpy array (a vocabulary, read on demand).

        Raises:
            KeyError: no array metadata called ``key``.
            CheckpointError: an array of arrays (no GGUF vocabulary is one).
        """
        marker = self.metadata.get(key)
        if not (isinstance(marker, tuple) and marker[0] == "array"):
            raise KeyError(f"{self.path}: no array metadata {key!r}")
        cur = _Cursor(self.path, memoryview(self.data), len(self.data))
        _, n_kv = _read_header(cur)
        for i in range(n_kv):
            name = cur.string(f"metadata key {i}", _MAX_NAME_BYTES)
            vtype = cur.u32(f"the value type of {name!r}")
            if name == key:
                etype = cur.u32(f"the element type of {key!r}")
                return _read_items(cur, key, etype, cur.u64(f"the length of {key!r}"))
            _read_value(cur, name, vtype)
        raise KeyError(f"{self.path}: no array metadata {key!r}")  # the file changed under us

    def __repr__(self) -> str:
        return (
            f"GGUFFile({self.path!r}: {len(self.tensors)} tensors, "
            f"{len(self.metadata)} metadata keys, alignment {self.alignment})"
        )


def read_gguf(path: str | os.PathLike) -> GGUFFile:
    """Open a GGUF file: parse its header, metadata and tensor index, map its data.

    Raises:
        CheckpointError: the file is not a GGUF file ember reads (truncated, corrupt, another
            version, or a tensor type ember has no format for); the message names the file.
        OSError: the file cannot be opened.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size < _HEADER_BYTES:
        raise CheckpointError(f"{path}: {size} bytes is too short for a GGUF header")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    cur = _Cursor(path, memoryview(data), len(data))
    n_tensors, n_kv = _read_header(cur)
    metadata = _read_metadata(cur, n_kv)
    alignment = _alignment(path, metadata)
    infos = _read_tensor_infos(cur, n_tensors)
    advise_random(data._mmap)  # the header is read; from here on, rows at random
    data_start = -(-cur.pos // alignment) * alignment
    tensors = _place_tensors(path, infos, data_start, alignment, cur.end)
    return GGUFFile(path, data, tensors, metadata, alignment)


class _Cursor:
    """A read position over the mapped file; every read is checked against the end."""

    __slots__ = ("buf", "end", "path", "pos")

    def __init__(self, path: str, buf: memoryview, end: int) -> None:
        self.path, self.buf, self.end, self.pos = path, buf, end, 0

    def error(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.path}: {what}")

    def take(self, n: int, what: str) -> int:
        """Advance past ``n`` bytes; return where they start."""
        start = self.pos
        if n > self.end - start:
            raise self.error(
                f"{what} at byte {start} needs {n} bytes, past the end of the file ({self.end})"
            )
        self.pos = start + n
        return start

    def unpack(self, fmt: struct.Struct, what: str) -> int | float | bool:
        return fmt.unpack_from(self.buf, self.take(fmt.size, what))[0]

    def u32(self, what: str) -> int:
        return int(self.unpack(_U32, what))

    def u64(self, what: str) -> int:
        return int(self.unpack(_U64, what))

    def string(self, what: str, limit: int | None = None, errors: str = "strict") -> str:
        at = self.pos
        n = self.u64(f"the length of {what}")
        start = self.take(n, f"{what} of {n} bytes")
        if limit is not None and n > limit:
            raise self.error(f"{what} at byte {at} is {n} bytes; GGUF allows at most {limit}")
        try:
            return str(self.buf[start : start + n], "utf-8", errors)
        except UnicodeDecodeError as e:
            raise self.error(f"{what} at byte {at} is not valid UTF-8 ({e.reason})") from None

    def remaining(self) -> int:
        return self.end - self.pos


def _read_header(cur: _Cursor) -> tuple[int, int]:
    start = cur.take(len(_MAGIC), "magic")
    magic = bytes(cur.buf[start : start + len(_MAGIC)])
    if magic != _MAGIC:
        raise cur.error(f"not a GGUF file (magic {magic!r}, expected {_MAGIC!r})")
    version = cur.u32("version")
    if version not in _VERSIONS:
        hint = " (a big-endian file?)" if version >= 1 << 16 else ""
        raise cur.error(f"unsupported GGUF version {version}{hint}; ember reads versions 2 and 3")
    n_tensors, n_kv = cur.u64("tensor count"), cur.u64("metadata count")
    if n_tensors * _MIN_INFO_BYTES + n_kv * _MIN_KV_BYTES > cur.remaining():
        raise cur.error(
            f"{n_tensors} tensors and {n_kv} metadata entries cannot fit in the "
            f"{cur.remaining()} bytes after the header"
        )
    return n_tensors, n_kv


def _read_metadata(cur: _Cursor, n_kv: int) -> dict[str, object]:
    metadata: dict[str, object] = {}
    for i in range(n_kv):
        key = cur.string(f"metadata key {i}", _MAX_NAME_BYTES)
        if key in metadata:
            raise cur.error(f"duplicate metadata key {key!r}")
        vtype = cur.u32(f"the value type of {key!r}")
        metadata[key] = _read_value(cur, key, vtype)
    return metadata


def _read_value(cur: _Cursor, key: str, vtype: int) -> object:
    if vtype in _SCALARS:
        return cur.unpack(_SCALARS[vtype], f"the value of {key!r}")
    if vtype == _STRING:  # a value of other bytes keeps them (llama.cpp reads such files)
        return cur.string(f"the value of {key!r}", errors="surrogateescape")
    if vtype == _ARRAY:
        etype = cur.u32(f"the element type of {key!r}")
        count = cur.u64(f"the length of {key!r}")
        _skip_array(cur, key, etype, count, 1)
        return ("array", etype, count)
    raise cur.error(f"metadata {key!r} has unknown value type {vtype}")


def _skip_array(cur: _Cursor, key: str, etype: int, count: int, depth: int) -> None:
    """Move past an array's items without making Python objects of them."""
    if depth > _MAX_ARRAY_DEPTH:
        raise cur.error(f"metadata {key!r} nests arrays deeper than {_MAX_ARRAY_DEPTH}")
    if etype in _SCALARS:
        cur.take(count * _SCALARS[etype].size, f"the {count} items of {key!r}")
    elif etype == _STRING:
        _skip_strings(cur, key, count)
    elif etype == _ARRAY:
        if count * 12 > cur.remaining():
            raise cur.error(f"metadata {key!r} claims {count} arrays, past the end of the file")
        for _ in range(count):
            inner_type = cur.u32(f"an element type in {key!r}")
            inner_count = cur.u64(f"an array length in {key!r}")
            _skip_array(cur, key, inner_type, inner_count, depth + 1)
    else:
        raise cur.error(f"metadata {key!r} is an array of unknown value type {etype}")


def _read_items(cur: _Cursor, key: str, etype: int, count: int) -> list[str] | np.ndarray:
    if etype in _SCALARS:
        dtype = np.dtype(_SCALARS[etype].format)
        start = cur.take(count * dtype.itemsize, f"the {count} items of {key!r}")
        return np.frombuffer(cur.buf, dtype, count, start).copy()
    if etype == _STRING:
        start = cur.pos
        _skip_strings(cur, key, count)  # checks every length against the file first
        items, buf, pos = [], cur.buf, start
        for _ in range(count):
            n = _U64.unpack_from(buf, pos)[0]
            try:
                items.append(str(buf[pos + 8 : pos + 8 + n], "utf-8"))
            except UnicodeDecodeError as e:
                raise cur.error(f"an item of {key!r} is not valid UTF-8 ({e.reason})") from None
            pos += 8 + n
        return items
    raise cur.error(f"metadata {key!r} is an array of type {etype}; ember reads flat arrays")


def _skip_strings(cur: _Cursor, key: str, count: int) -> None:
    # The hot loop of opening a file: a vocabulary is 10^5 strings; only their lengths are read.
    if count * 8 > cur.remaining():
        raise cur.error(f"metadata {key!r} claims {count} strings, past the end of the file")
    unpack, buf, pos, last = _U64.unpack_from, cur.buf, cur.pos, cur.end - 8
    for _ in range(count):
        if pos > last:
            raise cur.error(f"a string in metadata {key!r} runs past the end of the file")
        pos += 8 + unpack(buf, pos)[0]
    if pos > cur.end:
        raise cur.error(f"a string in metadata {key!r} runs past the end of the file")
    cur.pos = pos


_Info = tuple[str, tuple[int, ...], int, int]  # name, dims in file order, type id, offset


def _read_tensor_infos(cur: _Cursor, n_tensors: int) -> list[_Info]:
    infos: list[_Info] = []
    names: set[str] = set()
    for i in range(n_tensors):
        name = cur.string(f"the name of tensor {i}", _MAX_NAME_BYTES)
        if name in names:
            raise cur.error(f"duplicate tensor name {name!r}")
        names.add(name)
        n_dims = cur.u32(f"n_dims of tensor {name!r}")
        if n_dims > _MAX_DIMS:
            raise cur.error(f"tensor {name!r} has {n_dims} dims; GGUF allows at most {_MAX_DIMS}")
        dims = tuple(cur.u64(f"a dim of tensor {name!r}") for _ in range(n_dims))
        type_id = cur.u32(f"the type of tensor {name!r}")
        offset = cur.u64(f"the offset of tensor {name!r}")
        infos.append((name, dims, type_id, offset))
    return infos


def _alignment(path: str, metadata: dict[str, object]) -> int:
    value = metadata.get("general.alignment", _DEFAULT_ALIGNMENT)
    if type(value) is not int or value <= 0 or value & (value - 1):
        raise CheckpointError(f"{path}: general.alignment {value!r} is not a power of two")
    return value


def _place_tensors(
    path: str, infos: list[_Info], data_start: int, alignment: int, size: int
) -> dict[str, GGUFTensor]:
    tensors: dict[str, GGUFTensor] = {}
    for name, dims, type_id, rel in infos:
        where = f"{path}: tensor {name!r}"
        shape = tuple(reversed(dims))
        nbytes = _tensor_nbytes(where, shape, type_id)
        if rel % alignment:
            raise CheckpointError(f"{where}: data offset {rel} is not a multiple of {alignment}")
        offset = data_start + rel
        if offset + nbytes > size:
            raise CheckpointError(
                f"{where}: data [{offset}, {offset + nbytes}) lies outside the file ({size} bytes)"
            )
        tensors[name] = GGUFTensor(name, type_id, shape, offset, nbytes)
    by_offset = sorted((t for t in tensors.values() if t.nbytes), key=lambda t: t.offset)
    for a, b in pairwise(by_offset):
        if b.offset < a.offset + a.nbytes:
            raise CheckpointError(f"{path}: tensors {a.name!r} and {b.name!r} overlap in the file")
    return tensors


def _tensor_nbytes(where: str, shape: tuple[int, ...], type_id: int) -> int:
    if any(d > I64_MAX for d in shape):  # zero dims are allowed: a tensor of no bytes
        raise CheckpointError(f"{where}: shape {shape} has a negative dim (as int64)")
    count = prod(shape)
    if overflows_numpy(shape, 8):  # the widest GGUF element, before the type is known
        raise CheckpointError(f"{where}: shape {shape} overflows a 64-bit byte count")
    fmt = BY_GGML_TYPE.get(type_id)
    if fmt is not None:
        cols = shape[-1] if shape else 1
        if cols % fmt.block_elements:
            raise CheckpointError(
                f"{where}: rows of {cols} values are not a whole number of {fmt.name} blocks "
                f"({fmt.block_elements} values each)"
            )
        return count // fmt.block_elements * fmt.block_bytes
    plain = PLAIN_GGML_TYPES.get(type_id)
    if plain is None:
        name = _GGML_NAMES.get(type_id, "unknown")
        raise CheckpointError(
            f"{where}: GGML type {type_id} ({name}) is not a type ember reads; known: "
            f"{', '.join(_GGML_NAMES[i] for i in (*PLAIN_GGML_TYPES, *BY_GGML_TYPE))}"
        )
    return count * np.dtype(plain.to_numpy()).itemsize
