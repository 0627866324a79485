"""`read_safetensors`: zero-copy round trips against the `safetensors` package (bfloat16 and
float8 by their bits), sharded checkpoints and model folders, one `CheckpointError` per flaw of
an untrusted file, and fuzzing of a real file's bytes and header."""

from __future__ import annotations

import json
import mmap
import os
import struct
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember.weights.errors import CheckpointError
from ember.weights.safetensors import read_safetensors

try:  # the reference writer and reader; not a dependency of ember
    import safetensors
    import safetensors.numpy as stnp
except ImportError:  # pragma: no cover
    safetensors = stnp = None

needs_safetensors = pytest.mark.skipif(stnp is None, reason="the safetensors package is absent")

CODES = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "U16": np.dtype(np.uint16),
    "I16": np.dtype(np.int16),
    "U32": np.dtype(np.uint32),
    "I32": np.dtype(np.int32),
    "U64": np.dtype(np.uint64),
    "I64": np.dtype(np.int64),
    "F16": np.dtype(np.float16),
    "F32": np.dtype(np.float32),
    "F64": np.dtype(np.float64),
    "C64": np.dtype(np.complex64),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
}
CODE_OF = {dtype: code for code, dtype in CODES.items()}


# --- writing files by hand (struct + json), independent of the code under test -------------------


def pack(header: Any, data: bytes = b"", *, raw_header: bytes | None = None) -> bytes:
    """A file of `header` (JSON, space-padded to 8 bytes, as the reference writer pads) and
    `data`, or of `raw_header` bytes as they are."""
    if raw_header is None:
        raw_header = json.dumps(header).encode()
        raw_header += b" " * (-len(raw_header) % 8)
    return struct.pack("<Q", len(raw_header)) + raw_header + data


def build(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """A safetensors file of `tensors`, laid out one after another in order."""
    header: dict[str, Any] = {} if metadata is None else {"__metadata__": metadata}
    data = b""
    for name, array in tensors.items():
        chunk = np.ascontiguousarray(array).tobytes()
        header[name] = {
            "dtype": CODE_OF[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [len(data), len(data) + len(chunk)],
        }
        data += chunk
    return pack(header, data)


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def random_bits(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An array of `dtype` whose bytes are random (NaNs and infinities included)."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    return np.frombuffer(rng.bytes(nbytes), dtype=dtype).reshape(shape).copy()


def mapped(array: np.ndarray) -> bool:
    """Whether the array's memory belongs to an mmap (through its chain of bases)."""
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, mmap.mmap)


def bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array).view(f"u{array.dtype.itemsize}")


# --- round trips ---------------------------------------------------------------------------------


def test_the_pypi_safetensors_package_is_not_shadowed() -> None:
    import ember.weights.safetensors as ours

    if safetensors is not None:
        assert safetensors.__name__ == "safetensors" and hasattr(safetensors, "safe_open")
        assert Path(safetensors.__file__).parent != Path(ours.__file__).parent
    assert ours.__name__ == "ember.weights.safetensors"


@needs_safetensors
@pytest.mark.parametrize(
    "code",
    ["F64", "F32", "F16", "C64", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL"],
)
@pytest.mark.parametrize("shape", [(3, 5), (7,), (), (2, 0, 3), (2, 3, 4, 1)])
def test_round_trip_against_the_reference_reader(tmp_path: Path, code: str, shape: tuple) -> None:
    rng = np.random.default_rng(0)
    expected = {
        "weight": random_bits(rng, shape, CODES[code]),
        "bias": rng.standard_normal(4).astype(np.float32),
    }
    if code == "BOOL":
        expected["weight"] = rng.integers(0, 2, shape).astype(bool)
    path = tmp_path / "model.safetensors"
    stnp.save_file(expected, path, metadata={"format": "np"})

    ours = read_safetensors(path)
    reference = stnp.load_file(path)
    assert sorted(ours) == sorted(reference) == sorted(expected)
    for name, array in ours.items():
        assert array.dtype == reference[name].dtype == expected[name].dtype
        assert array.shape == reference[name].shape == expected[name].shape
        assert np.array_equal(bits(array), bits(reference[name]))
    with safetensors.safe_open(path, framework="numpy") as handle:
        for name in handle.keys():  # noqa: SIM118
            assert np.array_equal(bits(handle.get_tensor(name)), bits(ours[name]))


@needs_safetensors
@pytest.mark.parametrize(
    "dtype",
    [
        ml_dtypes.bfloat16,
        ml_dtypes.float8_e4m3fn,
        ml_dtypes.float8_e5m2,
        ml_dtypes.float8_e4m3fnuz,
        ml_dtypes.float8_e5m2fnuz,
        ml_dtypes.float8_e8m0fnu,
    ],
)
def test_ml_dtypes_written_by_the_reference_writer_keep_their_bits(
    tmp_path: Path, dtype: type
) -> None:
    rng = np.random.default_rng(1)
    expected = {"table": random_bits(rng, (16, 8), np.dtype(dtype)), "pad": np.ones(3, np.int8)}
    path = tmp_path / "narrow.safetensors"
    stnp.save_file(expected, path)

    ours = read_safetensors(path)
    assert ours["table"].dtype == np.dtype(dtype) and ours["table"].shape == (16, 8)
    assert np.array_equal(bits(ours["table"]), bits(expected["table"]))
    assert np.array_equal(ours["pad"], expected["pad"])


def test_bfloat16_built_by_hand(tmp_path: Path) -> None:
    values = np.array([[1.0, -2.5, 3.0e38], [np.inf, np.nan, -0.0]], dtype=ml_dtypes.bfloat16)
    path = write(tmp_path / "bf16.safetensors", build({"x": values}))
    content = path.read_bytes()
    header = json.loads(content[8 : 8 + struct.unpack("<Q", content[:8])[0]])
    assert header["x"]["dtype"] == "BF16"

    got = read_safetensors(path)["x"]
    assert got.dtype == np.dtype(ml_dtypes.bfloat16) and got.shape == (2, 3)
    assert np.array_equal(bits(got), bits(values))
    assert got[0, 1] == -2.5 and np.isnan(got[1, 1])


@needs_safetensors
def test_files_built_by_hand_are_what_the_reference_reads(tmp_path: Path) -> None:
    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.arange(3, dtype="i8")}
    path = write(tmp_path / "hand.safetensors", build(tensors, {"k": "v"}))
    for name, array in stnp.load_file(path).items():
        assert np.array_equal(array, tensors[name])


def test_arrays_are_read_only_maps_of_the_file(tmp_path: Path) -> None:
    tensors = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.arange(5, dtype="i8")}
    path = write(tmp_path / "m.safetensors", build(tensors))
    got = read_safetensors(path)
    for name, array in got.items():
        assert mapped(array), name
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array[...] = 0
        assert np.array_equal(array, tensors[name])
    # No copy: bytes written to the file afterwards show through the arrays.
    start = 8 + struct.unpack("<Q", path.read_bytes()[:8])[0]
    with open(path, "r+b") as handle:
        handle.seek(start)
        handle.write(np.float32(-7.0).tobytes())
    assert got["a"][0, 0] == -7.0


def test_zero_size_tensors_metadata_and_empty_files(tmp_path: Path) -> None:
    tensors = {
        "empty": np.zeros((0, 4), np.float32),
        "full": np.arange(4, dtype=np.int32),
        "also_empty": np.zeros((3, 0), ml_dtypes.bfloat16),
    }
    got = read_safetensors(write(tmp_path / "z.safetensors", build(tensors, {"format": "pt"})))
    assert {name: a.shape for name, a in got.items()} == {n: a.shape for n, a in tensors.items()}
    assert np.array_equal(got["full"], tensors["full"])
    assert read_safetensors(write(tmp_path / "none.safetensors", pack({}))) == {}
    assert read_safetensors(write(tmp_path / "meta.safetensors", pack({"__metadata__": {}}))) == {}
    # A zero-size tensor may sit at the start or the very end of the data area.
    header = {
        "a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
        "end": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]},
        "start": {"dtype": "F32", "shape": [0, 2], "data_offsets": [0, 0]},
    }
    got = read_safetensors(write(tmp_path / "e.safetensors", pack(header, b"abcd")))
    assert got["end"].shape == (0,) and got["start"].shape == (0, 2)


# --- sharded checkpoints and folders -------------------------------------------------------------


def sharded(folder: Path) -> dict[str, np.ndarray]:
    """Two shards and their index in `folder`; returns every tensor."""
    rng = np.random.default_rng(2)
    first = {
        "embed.weight": random_bits(rng, (10, 4), np.dtype(ml_dtypes.bfloat16)),
        "layer.0.w": rng.standard_normal((4, 4)).astype(np.float32),
    }
    second = {"layer.1.w": rng.standard_normal((4, 4)).astype(np.float16), "step": np.arange(2)}
    write(folder / "model-00001-of-00002.safetensors", build(first))
    write(folder / "model-00002-of-00002.safetensors", build(second))
    weight_map = {name: "model-00001-of-00002.safetensors" for name in first}
    weight_map |= {name: "model-00002-of-00002.safetensors" for name in second}
    index = {"metadata": {"total_size": 1234}, "weight_map": weight_map}
    write(folder / "model.safetensors.index.json", json.dumps(index).encode())
    return first | second


def assert_same(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(expected)
    for name, array in got.items():
        assert array.dtype == expected[name].dtype and array.shape == expected[name].shape
        assert np.array_equal(bits(array), bits(expected[name])), name
        assert mapped(array) and not array.flags.writeable


def test_sharded_checkpoint_through_its_index_and_its_folder(tmp_path: Path) -> None:
    expected = sharded(tmp_path)
    assert_same(read_safetensors(tmp_path / "model.safetensors.index.json"), expected)
    assert_same(read_safetensors(str(tmp_path)), expected)
    assert_same(read_safetensors(tmp_path), expected)


def test_folder_prefers_the_index_then_model_safetensors_then_every_file(tmp_path: Path) -> None:
    expected = sharded(tmp_path)
    write(tmp_path / "model.safetensors", build({"other": np.zeros(1, np.int8)}))
    assert_same(read_safetensors(tmp_path), expected)  # the index wins

    single = {"w": np.arange(3, dtype=np.float64)}
    write(tmp_path / "one" / "model.safetensors", build(single))
    write(tmp_path / "one" / "extra.safetensors", build({"x": np.zeros(1, np.int8)}))
    assert_same(read_safetensors(tmp_path / "one"), single)

    parts = {"a": np.arange(2, dtype=np.int16), "b": np.ones((2, 2), np.float32)}
    write(tmp_path / "two" / "part-b.safetensors", build({"b": parts["b"]}))
    write(tmp_path / "two" / "part-a.safetensors", build({"a": parts["a"]}))
    write(tmp_path / "two" / "README.md", b"not a checkpoint")
    (tmp_path / "two" / "dir.safetensors").mkdir()
    got = read_safetensors(tmp_path / "two")
    assert_same(got, parts)
    assert list(got) == ["a", "b"]  # files in order of name


# --- flaws of a single file ----------------------------------------------------------------------

F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
DATA = bytes(16)


def entry(**change: Any) -> dict[str, Any]:
    return {"w": {**F32, **change}}


FILE_FLAWS: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "too short"),
    "seven bytes": (b"\x08\0\0\0\0\0\0", "too short"),
    "length past the end": (struct.pack("<Q", 100) + b"{}", "header length 100 exceeds the 2"),
    "absurd length": (struct.pack("<Q", 2**64 - 1) + b"{}" * 8, "exceeds the limit"),
    "not utf-8": (pack(None, raw_header=b'{"\xff\xfe": 1}'), "not valid UTF-8"),
    "not json": (pack(None, raw_header=b'{"w": {"dtype": '), "not valid JSON"),
    "nul padding": (pack(None, raw_header=b"{}\0\0\0\0\0\0"), "not valid JSON"),
    "an array": (pack([1, 2]), "an array, not a JSON object"),
    "a string": (pack("hello"), "a string, not a JSON object"),
    "deep nesting": (pack(None, raw_header=b"[" * 100_000), "JSON"),
    "huge integer": (pack(None, raw_header=b'{"w": ' + b"9" * 5000 + b"}"), "not valid JSON"),
    "duplicate name": (
        pack(None, raw_header=b'{"w": 1, "w": 2}'),
        "has the key 'w' twice",
    ),
    "metadata not an object": (pack({"__metadata__": [1]}), "__metadata__ is an array"),
    "entry not an object": (pack({"w": [1, 2]}), "tensor 'w' is an array"),
    "entry lacks fields": (pack({"w": {"dtype": "F32"}}), "has no shape, data_offsets"),
    "dtype not a string": (pack(entry(dtype=7), DATA), "dtype is a number"),
    "unknown dtype": (pack(entry(dtype="F13"), DATA), "unknown dtype 'F13'; known: BOOL, U8"),
    "packed dtype": (pack(entry(dtype="F4"), DATA), "dtype F4 packs sub-byte elements"),
    "shape not a list": (pack(entry(shape=2), DATA), "shape 2 is not an array of integers"),
    "float dim": (pack(entry(shape=[2.0]), DATA), "not an array of integers"),
    "bool dim": (pack(entry(shape=[True, 2]), DATA), "not an array of integers"),
    "negative dim": (pack(entry(shape=[-2, -1], data_offsets=[0, 8]), DATA), "negative dimension"),
    "too many dims": (pack(entry(shape=[1] * 65, data_offsets=[0, 4]), DATA), "65 dimensions"),
    "offsets not a pair": (pack(entry(data_offsets=[0]), DATA), "is not [begin, end]"),
    "offsets not ints": (pack(entry(data_offsets=[0, "8"]), DATA), "is not [begin, end]"),
    "offsets null": (pack(entry(data_offsets=None), DATA), "is not [begin, end]"),
    "negative offset": (pack(entry(data_offsets=[-8, 0]), DATA), "outside the data area"),
    "end before begin": (pack(entry(data_offsets=[8, 0]), DATA), "outside the data area"),
    "past the data": (pack(entry(data_offsets=[12, 20]), DATA), "outside the data area of 16"),
    "byte size mismatch": (
        pack(entry(shape=[3]), DATA),
        "shape [3] of F32 is 12 bytes, but data_offsets [0, 8] hold 8",
    ),
    "huge shape": (
        pack(entry(shape=[10**30, 10**30]), DATA),
        "shape [1000000000000000000000000000000, 1000000000000000000000000000000] of F32 "
        "overflows a 64-bit byte count",
    ),
    "empty, but too large to address": (
        pack(entry(shape=[0, 2**64], data_offsets=[0, 0]), b""),
        "shape [0, 18446744073709551616] of F32 overflows a 64-bit byte count",
    ),
    # The tensors cover the data area in order (as the reference reader demands: no polyglots).
    "bytes after the last tensor": (pack(entry(), DATA), "8 bytes after the last tensor belong"),
    "a gap": (
        pack({"a": F32, "b": {**F32, "data_offsets": [12, 20]}}, bytes(20)),
        "tensor 'b' begins at byte 12 of the data area, where 8 was due",
    ),
    "an empty tensor inside another's bytes": (
        pack({"a": F32, "e": {**F32, "shape": [0], "data_offsets": [4, 4]}}, bytes(8)),
        "tensor 'e' begins at byte 4 of the data area, where 8 was due",
    ),
    "overlap": (
        pack(
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "U8", "shape": [4], "data_offsets": [12, 16]},
                "c": {"dtype": "I16", "shape": [2], "data_offsets": [6, 10]},
            },
            DATA,
        ),
        "tensors 'a' [0, 8] and 'c' [6, 10] overlap",
    ),
    "same bytes twice": (
        pack({"a": F32, "b": F32}, DATA),
        "tensors 'a' [0, 8] and 'b' [0, 8] overlap",
    ),
}


@pytest.mark.parametrize("flaw", FILE_FLAWS)
def test_each_flaw_of_a_file_is_one_checkpoint_error(tmp_path: Path, flaw: str) -> None:
    content, message = FILE_FLAWS[flaw]
    path = write(tmp_path / "bad.safetensors", content)
    with pytest.raises(CheckpointError, match=r"bad\.safetensors: ") as caught:
        read_safetensors(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)
    assert len(str(caught.value)) < 1000


def test_a_header_length_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "sparse.safetensors"
    with open(path, "wb") as handle:  # 200 MB, sparse where the filesystem allows
        handle.write(struct.pack("<Q", 150_000_000))
        handle.truncate(200_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="header length 150000000 exceeds the limit"):
            read_safetensors(path)
        assert tracemalloc.get_traced_memory()[1] < 1_000_000
    finally:
        tracemalloc.stop()


def test_a_path_that_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"nothing\.safetensors: no such file"):
        read_safetensors(tmp_path / "nothing.safetensors")
    with pytest.raises(CheckpointError, match=r"nothing\.json: no such file"):
        read_safetensors(tmp_path / "nothing.json")
    if os.path.exists("/dev/null"):
        with pytest.raises(CheckpointError, match="not a regular file"):
            read_safetensors("/dev/null")


# --- flaws of an index or a folder ---------------------------------------------------------------


def flawed_index(folder: Path, change: Callable[[dict[str, Any]], Any]) -> Path:
    sharded(folder)
    path = folder / "model.safetensors.index.json"
    index = json.loads(path.read_text())
    changed = change(index)  # None where it changed `index` in place
    index = index if changed is None else changed
    return write(path, json.dumps(index).encode())


INDEX_FLAWS: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "no weight_map": (lambda i: i.pop("weight_map") and None, "weight_map is null, not an"),
    "weight_map a list": (lambda i: i.update(weight_map=["a"]), "weight_map is an array"),
    "weight_map empty": (lambda i: i.update(weight_map={}), "weight_map names no tensors"),
    "not an object": (lambda i: [i], "index is an array, not a JSON object"),
    "file not a string": (
        lambda i: i["weight_map"].update({"step": 3}),
        "weight_map['step'] is 3, not a file name",
    ),
    "file empty": (lambda i: i["weight_map"].update({"step": ""}), "is '', not a file name"),
    "absolute file": (
        lambda i: i["weight_map"].update({"step": "/etc/passwd"}),
        "leaves the index's folder",
    ),
    "parent file": (
        lambda i: i["weight_map"].update({"step": "../x.safetensors"}),
        "leaves the index's folder",
    ),
    "missing shard": (
        lambda i: i["weight_map"].update({"step": "model-gone.safetensors"}),
        "shard 'model-gone.safetensors' (of 'step') is missing",
    ),
    "tensor absent from its shard": (
        lambda i: i["weight_map"].update({"ghost": "model-00002-of-00002.safetensors"}),
        "puts 1 tensor(s) in 'model-00002-of-00002.safetensors', which lacks them: ['ghost']",
    ),
    "tensor in the wrong shard": (
        lambda i: i["weight_map"].update({"step": "model-00001-of-00002.safetensors"}),
        "which lacks them: ['step']",
    ),
}


@pytest.mark.parametrize("flaw", INDEX_FLAWS)
def test_each_flaw_of_an_index_is_one_checkpoint_error(tmp_path: Path, flaw: str) -> None:
    change, message = INDEX_FLAWS[flaw]
    path = flawed_index(tmp_path, change)
    for target in (path, tmp_path):
        with pytest.raises(CheckpointError) as caught:
            read_safetensors(target)
        assert str(caught.value).startswith(f"{path}: ")
        assert message in str(caught.value)


def test_an_index_that_is_not_json(tmp_path: Path) -> None:
    path = write(tmp_path / "model.safetensors.index.json", b'{"weight_map": ')
    with pytest.raises(CheckpointError, match=r"index\.json: index is not valid JSON"):
        read_safetensors(path)


def test_a_corrupt_shard_is_named(tmp_path: Path) -> None:
    sharded(tmp_path)
    shard = write(tmp_path / "model-00002-of-00002.safetensors", b"\x01\x02")
    with pytest.raises(CheckpointError) as caught:
        read_safetensors(tmp_path)
    assert str(caught.value).startswith(f"{shard}: ")


def test_duplicate_names_across_shards(tmp_path: Path) -> None:
    sharded(tmp_path)  # shard 2 also holds a tensor that the index places in shard 1
    extra = {"layer.1.w": np.zeros(1, np.float16), "step": np.arange(2), "layer.0.w": np.ones(1)}
    shard = write(tmp_path / "model-00002-of-00002.safetensors", build(extra))
    with pytest.raises(
        CheckpointError, match=r"tensor 'layer\.0\.w' is also in .*00001-of-00002"
    ) as e:
        read_safetensors(tmp_path)
    assert str(e.value).startswith(f"{shard}: ")


def test_duplicate_names_across_files_of_a_folder(tmp_path: Path) -> None:
    write(tmp_path / "a.safetensors", build({"w": np.zeros(2, np.float32)}))
    write(tmp_path / "b.safetensors", build({"w": np.ones(2, np.float32)}))
    with pytest.raises(CheckpointError, match=r"b\.safetensors: tensor 'w' is also in .*a\.safe"):
        read_safetensors(tmp_path)


def test_a_folder_without_safetensors_files(tmp_path: Path) -> None:
    write(tmp_path / "config.json", b"{}")
    (tmp_path / "model.safetensors.index.json").mkdir()  # not a file: ignored
    with pytest.raises(CheckpointError, match=r"folder has no model\.safetensors\.index\.json"):
        read_safetensors(tmp_path)


# --- fuzzing -------------------------------------------------------------------------------------

SEED = build(
    {
        "emb": np.arange(12, dtype=np.float32).reshape(3, 4),
        "bf": np.arange(4).astype(ml_dtypes.bfloat16),
        "none": np.zeros((0, 2), np.int64),
        "ids": np.arange(3, dtype=np.int16),
    },
    {"format": "np"},
)
HEADER_END = 8 + struct.unpack("<Q", SEED[:8])[0]
PEAK_LIMIT = 256 * 1024  # bytes a read of a file this small may allocate, at its peak


@pytest.fixture(scope="module")
def fuzz_dir() -> Any:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def check_read(path: Path) -> None:
    """The one property: tensors that lie inside the file, or a CheckpointError; small peaks."""
    size = path.stat().st_size
    tracemalloc.reset_peak()
    try:
        tensors = read_safetensors(path)
    except CheckpointError as exc:
        assert str(path) in str(exc)
        return
    finally:
        assert tracemalloc.get_traced_memory()[1] < PEAK_LIMIT
    for array in tensors.values():
        assert mapped(array) and not array.flags.writeable
        assert array.nbytes <= size
        array.tobytes()  # every byte is readable


position = st.one_of(
    st.integers(0, 7),  # the length prefix
    st.integers(8, HEADER_END - 1),  # the header
    st.integers(0, len(SEED) - 1),
)
edit = st.one_of(
    st.tuples(st.just("set"), position, st.integers(0, 255)),
    st.tuples(st.just("insert"), position, st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), position, st.integers(1, 8)),
    st.tuples(st.just("truncate"), st.integers(0, len(SEED)), st.just(0)),
    # A digit of the header's shapes and offsets changed: JSON that stays valid.
    st.tuples(st.just("digit"), st.integers(8, HEADER_END - 1), st.integers(0, 10)),
    st.tuples(
        st.just("length"),
        st.one_of(
            st.integers(0, 2**64 - 1),
            st.integers(HEADER_END - 16, len(SEED) + 16)
            .filter(lambda n: n >= 8)
            .map(lambda n: n - 8),
        ),
        st.just(0),
    ),
)


def apply(content: bytearray, change: tuple[str, int, Any]) -> None:
    kind, where, what = change
    where = min(where, len(content))
    if kind == "set" and where < len(content):
        content[where] = what
    elif kind == "insert":
        content[where:where] = what
    elif kind == "delete":
        del content[where : where + what]
    elif kind == "truncate":
        del content[where:]
    elif kind == "digit":
        digits = [i for i in range(where, min(len(content), HEADER_END)) if 48 <= content[i] <= 57]
        if digits and what == 10:
            content[digits[0] + 1 : digits[0] + 1] = b"0"  # one more digit
        elif digits:
            content[digits[0]] = ord(str(what))
    elif kind == "length":
        content[:8] = struct.pack("<Q", where)


@settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(edit, min_size=1, max_size=4))
def test_fuzzed_bytes_read_or_raise_checkpoint_error(fuzz_dir: Path, changes: list) -> None:
    content = bytearray(SEED)
    for change in changes:
        apply(content, change)
    path = write(fuzz_dir / "fuzz.safetensors", bytes(content))
    tracemalloc.start()
    try:
        check_read(path)
    finally:
        tracemalloc.stop()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "dtype": st.sampled_from([*CODES, "F4", "F8_E8M0", "bf16", ""]) | json_values,
        "shape": st.lists(st.integers(-2, 6) | st.integers(0, 2**70), max_size=4) | json_values,
        "data_offsets": st.lists(st.integers(-4, 72), min_size=2, max_size=2) | json_values,
    },
)
headers = st.dictionaries(
    st.sampled_from(["a", "b", "c", "__metadata__"]), fields | json_values, max_size=4
)


@settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(header=headers, data=st.binary(max_size=64))
def test_fuzzed_headers_read_or_raise_checkpoint_error(
    fuzz_dir: Path, header: dict, data: bytes
) -> None:
    path = write(fuzz_dir / "header.safetensors", pack(header, data))
    tracemalloc.start()
    try:
        check_read(path)
    finally:
        tracemalloc.stop()


def test_a_tensor_of_a_dtype_graphs_cannot_hold_leaves_the_rest_usable(tmp_path: Path) -> None:
    """A complex64 tensor is read by the file reader, named by `load`, and refused only when
    asked for."""
    from ember.weights import CheckpointError as Refused
    from ember.weights import load

    tensors = {"freqs": np.ones((2, 2), np.complex64), "embed": np.arange(8, dtype=np.float32)}
    path = write(tmp_path / "c.safetensors", build(tensors))
    weights = load(path)
    assert list(weights) == ["embed"]
    np.testing.assert_array_equal(weights["embed"].array, tensors["embed"])
    assert "complex64" in weights.unreadable["freqs"]
    with pytest.raises(Refused, match="tensor 'freqs' holds complex64 values"):
        weights["freqs"]
    # a graph that reads it, bound to the whole checkpoint, says the same at load
    from ember.dtype import DType
    from ember.engine import InferenceSession
    from ember.graph import Graph, Weight

    with Graph("reads_freqs") as graph:
        graph.output(Weight("freqs", DType.float32, [2, 2]).cast(DType.float32))
    with pytest.raises(Refused, match="tensor 'freqs' holds complex64 values"):
        InferenceSession().load(graph, weights_registry=weights)
