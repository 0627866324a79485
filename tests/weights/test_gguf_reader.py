"""ember's GGUF reader: agreement with ``gguf.GGUFReader`` on files ``gguf.GGUFWriter`` wrote,
one clear CheckpointError per kind of corrupt file, and a fuzz test of mutated files."""

from __future__ import annotations

import functools
import itertools
import struct
import tempfile
from pathlib import Path

import gguf
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ember.quant import FORMATS, GGUF_FORMATS
from ember.weights.errors import CheckpointError
from ember.weights.gguf import read_gguf

Q = gguf.GGMLQuantizationType
VT = gguf.GGUFValueType


# --- real files, written by gguf.GGUFWriter -------------------------------------------------


def _quantized(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Valid blocks of format ``name``: gguf-py's quantizer where it has one, else ember's."""
    fmt = FORMATS[name]
    values = rng.standard_normal(shape).astype(np.float32)
    try:
        blocks = gguf.quants.quantize(values, Q(fmt.ggml_type))
    except NotImplementedError:
        if fmt.quantizable:
            blocks = fmt.quantize(values)
        else:  # decode-only formats: any bytes are blocks the reader must index alike
            count = values.size // fmt.block_elements * fmt.block_bytes
            blocks = rng.integers(0, 256, count, dtype=np.uint8).reshape(*shape[:-1], -1)
    return np.ascontiguousarray(blocks, np.uint8)


def _write_real(path: Path, alignment: int | None, vocab: int) -> dict[str, np.ndarray]:
    """A small file of every kind of tensor ember reads; returns the arrays written."""
    rng = np.random.default_rng(0)
    w = gguf.GGUFWriter(path, arch="toy")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    w.add_string("general.name", "tiny ✓")
    w.add_uint8("toy.u8", 200)
    w.add_int8("toy.i8", -5)
    w.add_uint16("toy.u16", 60_000)
    w.add_int16("toy.i16", -30_000)
    w.add_uint32("toy.block_count", 3)
    w.add_int32("toy.i32", -(2**31))
    w.add_uint64("toy.u64", 2**64 - 1)
    w.add_int64("toy.i64", -(2**40))
    w.add_float32("toy.eps", 1e-6)
    w.add_float64("toy.f64", 0.1)
    w.add_bool("toy.flag", True)
    w.add_array("tokenizer.ggml.tokens", [f"▁tok{i}" for i in range(vocab)])
    w.add_array("tokenizer.ggml.scores", [float(i) for i in range(vocab)])
    w.add_array("toy.nested", [[1, 2], [3]])
    arrays: dict[str, np.ndarray] = {
        "f32": rng.standard_normal((3, 5)).astype(np.float32),
        "vec": rng.standard_normal(7).astype(np.float32),
        "f16_3d": rng.standard_normal((2, 3, 4)).astype(np.float16),
        "bf16": rng.standard_normal((4, 6)).astype(ml_dtypes.bfloat16),
        "i32": rng.integers(-9, 9, (2, 3), dtype=np.int32),
        "f64": rng.standard_normal((1, 3)),
    }
    for name in GGUF_FORMATS:
        cols = 2 * FORMATS[name].block_elements
        arrays[f"{name}.weight"] = _quantized(name, (3, cols), rng)
    arrays["q4_k_3d"] = FORMATS["q4_k"].quantize(rng.standard_normal((2, 3, 256)))
    for name, a in arrays.items():
        if a.dtype == np.uint8:
            raw = Q(FORMATS[name.split(".")[0].removesuffix("_3d")].ggml_type)
        else:
            raw = Q.BF16 if a.dtype == ml_dtypes.bfloat16 else None
        w.add_tensor(name, a, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return arrays


@pytest.fixture(scope="module", params=[None, 1, 256], ids=["align32", "align1", "align256"])
def real(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(path, the arrays written, gguf.GGUFReader of it); a 50k-token vocabulary at alignment 32
    (GGUFReader takes a second to parse it), 1k at the others."""
    path = tmp_path_factory.mktemp("gguf") / "real.gguf"
    arrays = _write_real(path, request.param, vocab=50_000 if request.param is None else 1000)
    return path, arrays, gguf.GGUFReader(path)


def test_index_and_bytes_match_gguf_reader(real):
    path, _, ref = real
    ours = read_gguf(path)
    assert list(ours.tensors) == [t.name for t in ref.tensors]
    assert ours.alignment == ref.alignment
    for rt in ref.tensors:
        t = ours.tensors[rt.name]
        assert t.name == rt.name
        assert t.type_id == int(rt.tensor_type)
        assert t.shape == tuple(int(d) for d in reversed(rt.shape))  # GGUFReader: ggml order
        assert t.offset == rt.data_offset
        assert t.nbytes == rt.n_bytes
        mine = ours.array(rt.name).reshape(-1).view(np.uint8)
        assert np.array_equal(mine, rt.data.reshape(-1).view(np.uint8))


def test_arrays_are_the_written_values_as_zero_copy_views(real):
    path, arrays, _ = real
    g = read_gguf(path)
    for name, written in arrays.items():
        a = g.array(name)
        assert a.dtype == written.dtype and a.shape == written.shape, name
        assert np.array_equal(a.view(np.uint8), written.view(np.uint8)), name
        assert np.shares_memory(a, g.data) and not a.flags.writeable
        assert a.nbytes == g.tensors[name].nbytes
    for name, fmt in GGUF_FORMATS.items():
        assert g.tensors[f"{name}.weight"].shape == (3, 2 * fmt.block_elements)
        assert g.array(f"{name}.weight").shape == (3, 2 * fmt.block_bytes)
    assert g.tensors["q4_k_3d"].shape == (2, 3, 256)
    assert g.array("bf16").dtype == ml_dtypes.bfloat16


def test_metadata_matches_gguf_reader_and_arrays_stay_unparsed(real):
    path, _, ref = real
    g = read_gguf(path)
    keys = [k for k in ref.fields if not k.startswith("GGUF.")]  # GGUF.*: the reader's header
    assert list(g.metadata) == keys
    for key in keys:
        field = ref.fields[key]
        if field.types[0] == VT.ARRAY and key != "toy.nested":
            assert g.metadata[key] == ("array", int(field.types[1]), len(field.data)), key
        elif key != "toy.nested":
            assert g.metadata[key] == field.contents(), key
    n_tokens = len(ref.fields["tokenizer.ggml.tokens"].data)
    assert g.metadata["tokenizer.ggml.tokens"] == ("array", VT.STRING, n_tokens)
    assert g.metadata["toy.nested"] == ("array", VT.ARRAY, 2)
    assert g.metadata["general.name"] == "tiny ✓"
    assert g.metadata["toy.u64"] == 2**64 - 1 and g.metadata["toy.flag"] is True


def test_version_2_reads_the_same(real, tmp_path: Path):
    path = real[0]
    blob = bytearray(path.read_bytes())
    blob[4:8] = struct.pack("<I", 2)
    (tmp_path / "v2.gguf").write_bytes(blob)
    v2, v3 = read_gguf(tmp_path / "v2.gguf"), read_gguf(path)
    assert v2.tensors == v3.tensors and v2.metadata == v3.metadata


@pytest.mark.parametrize(("qtype", "label"), [(Q.Q8_K, "Q8_K")])
def test_a_type_ember_has_no_format_for_names_tensor_id_and_type(tmp_path: Path, qtype, label):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    w = gguf.GGUFWriter(tmp_path / "q.gguf", arch="toy")
    w.add_tensor("ok", np.zeros(4, np.float32))
    w.add_tensor("blk.0.ffn", np.zeros((2, 2 * size), np.uint8), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    assert gguf.GGUFReader(tmp_path / "q.gguf").tensors[1].shape.tolist() == [2 * block, 2]
    pattern = rf"q\.gguf: tensor 'blk\.0\.ffn': GGML type {int(qtype)} \({label}\)"
    with pytest.raises(CheckpointError, match=pattern):
        read_gguf(tmp_path / "q.gguf")


# --- corrupt files, built byte by byte ------------------------------------------------------


def _s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def _kv(key: str | bytes, vtype: int, payload: bytes) -> bytes:
    return _s(key) + struct.pack("<I", vtype) + payload


def _arr(etype: int, items: list[bytes]) -> bytes:
    return struct.pack("<IQ", etype, len(items)) + b"".join(items)


def _info(name: str | bytes, dims: tuple[int, ...], type_id: int = 0, offset: int = 0) -> bytes:
    """A tensor info; ``dims`` in file order (fastest first)."""
    n = len(dims)
    return _s(name) + struct.pack(f"<I{n}QIQ", n, *dims, type_id, offset)


def _blob(
    kvs: tuple[bytes, ...] = (),
    infos: tuple[bytes, ...] = (_info("w", (4, 2)),),
    data: bytes = bytes(32),
    *,
    magic: bytes = b"GGUF",
    version: bytes = struct.pack("<I", 3),
    counts: tuple[int, int] | None = None,
    align: int = 32,
) -> bytes:
    n_tensors, n_kv = counts if counts is not None else (len(infos), len(kvs))
    head = magic + version + struct.pack("<QQ", n_tensors, n_kv) + b"".join(kvs)
    head += b"".join(infos)
    return head + bytes(-len(head) % align) + data


def test_tensors_with_a_zero_dim_are_read_as_gguf_reader_reads_them(tmp_path: Path):
    """GGUF allows a tensor of no elements (llama.cpp and gguf-py read them); it holds no bytes,
    so it overlaps nothing, wherever its offset points."""
    path = tmp_path / "zero.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_tensor("empty", np.zeros((0, 4), np.float32))
    writer.add_tensor("w", np.arange(4, dtype=np.float32))
    writer.add_tensor(
        "q_empty", np.zeros((0, 34), np.uint8), raw_dtype=gguf.GGMLQuantizationType.Q8_0
    )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    g = read_gguf(path)
    assert g.array("empty").shape == (0, 4) and g.array("q_empty").shape == (0, 34)
    np.testing.assert_array_equal(g.array("w"), np.arange(4, dtype=np.float32))
    reference = {t.name: t for t in gguf.GGUFReader(path).tensors}
    assert [int(reference[n].n_bytes) for n in g.tensors] == [0, 16, 0]
    # an empty tensor whose offset falls inside another's bytes
    (tmp_path / "inside.gguf").write_bytes(
        _blob(infos=(_info("w", (4, 2)), _info("e", (4, 0), 0, 0)), data=bytes(32))
    )
    assert read_gguf(tmp_path / "inside.gguf").array("e").shape == (0, 4)


def test_a_string_value_of_other_bytes_keeps_them_and_the_file_opens(tmp_path: Path):
    """llama.cpp opens a file whose string value is not UTF-8; ember keeps its bytes (as lone
    surrogates), and a vocabulary item that is not is an error only when it is read."""
    kvs = (
        _kv("charsmap", 8, _s(b"\xff\xfeok")),
        _kv("toks", 9, _arr(8, [_s("x"), _s(b"\xff")])),
    )
    (tmp_path / "bytes.gguf").write_bytes(_blob(kvs))
    g = read_gguf(tmp_path / "bytes.gguf")
    assert g.metadata["charsmap"].encode("utf-8", "surrogateescape") == b"\xff\xfeok"
    assert g.array("w").shape == (2, 4)
    with pytest.raises(CheckpointError, match="an item of 'toks' is not valid UTF-8"):
        g.metadata_array("toks")


def test_the_byte_builder_makes_valid_files(tmp_path: Path):
    kvs = (_kv("a", 4, struct.pack("<I", 7)), _kv("toks", 9, _arr(8, [_s("x"), _s("yz")])))
    infos = (_info("w", (4, 2)), _info("q", (32, 1), 8, 32))
    (tmp_path / "ok.gguf").write_bytes(_blob(kvs, infos, bytes(32 + 34)))
    g = read_gguf(tmp_path / "ok.gguf")
    assert g.metadata == {"a": 7, "toks": ("array", 8, 2)}
    assert g.tensors["w"].shape == (2, 4) and g.array("q").shape == (1, 34)
    assert [t.name for t in gguf.GGUFReader(tmp_path / "ok.gguf").tensors] == ["w", "q"]


_HUGE = struct.pack("<Q", 2**62)
_ALIGN = "general.alignment"
_VALID = _blob()

CORRUPT = {
    "empty": (b"", "too short for a GGUF header"),
    "shorter than a header": (_VALID[:23], "23 bytes is too short for a GGUF header"),
    "bad magic": (_blob(magic=b"GGML"), r"not a GGUF file \(magic b'GGML'"),
    "version 1": (_blob(version=struct.pack("<I", 1)), "unsupported GGUF version 1;"),
    "version 4": (_blob(version=struct.pack("<I", 4)), "unsupported GGUF version 4;"),
    "big-endian": (_blob(version=struct.pack(">I", 3)), r"version 50331648 \(a big-endian"),
    "absurd tensor count": (_blob(counts=(2**40, 0)), "1099511627776 tensors .* cannot fit"),
    "absurd metadata count": (_blob(counts=(1, 2**64 - 1)), "metadata entries cannot fit"),
    "key length past end": (
        _blob((_HUGE + b"k" + struct.pack("<IB", 0, 1),)),
        "metadata key 0 of 4611686018427387904 bytes at byte 32 .* past the end",
    ),
    "string value past end": (
        _blob((_kv("s", 8, _HUGE + b"abc"),)),
        "the value of 's' of 4611686018427387904 bytes",
    ),
    "tensor name past end": (
        _blob(infos=(_HUGE + struct.pack("<IQIQ", 1, 4, 0, 0),)),
        "the name of tensor 0 of 4611686018427387904 bytes .* past the end",
    ),
    "string in an array past end": (
        _blob((_kv("toks", 9, _arr(8, [_s("a"), _HUGE + b"b"])),)),
        "a string in metadata 'toks' runs past the end",
    ),
    "absurd string-array count": (
        _blob((_kv("toks", 9, struct.pack("<IQ", 8, 2**60)),)),
        "'toks' claims 1152921504606846976 strings",
    ),
    "absurd scalar-array count": (
        _blob((_kv("ids", 9, struct.pack("<IQ", 4, 2**61)),)),
        "the 2305843009213693952 items of 'ids'",
    ),
    "absurd array-of-arrays count": (
        _blob((_kv("nest", 9, struct.pack("<IQ", 9, 2**50)),)),
        "'nest' claims 1125899906842624 arrays",
    ),
    "unknown value type": (_blob((_kv("x", 13, b"\0" * 8),)), "'x' has unknown value type 13"),
    "unknown array element type": (
        _blob((_kv("x", 9, _arr(99, [b"\0"])),)),
        "'x' is an array of unknown value type 99",
    ),
    "arrays nested too deep": (
        _blob((_kv("x", 9, _arr(9, [_arr(9, [_arr(9, [_arr(0, [b"\1"])])])])),)),
        "'x' nests arrays deeper than 3",
    ),
    "duplicate metadata key": (
        _blob((_kv("k", 0, b"\1"), _kv("k", 0, b"\2"))),
        "duplicate metadata key 'k'",
    ),
    "key too long": (
        _blob((_kv("k" * 65536, 0, b"\1"),)),
        "metadata key 0 at byte 24 is 65536 bytes; GGUF allows at most 65535",
    ),
    "tensor name too long": (
        _blob(infos=(_info("w" * 70000, (4,)),)),
        "the name of tensor 0 at byte 24 is 70000 bytes; GGUF allows at most 65535",
    ),
    "key not UTF-8": (_blob((_kv(b"\xff\xfe", 0, b"\1"),)), "metadata key 0 .* not valid UTF-8"),
    "n_dims 5": (_blob(infos=(_info("w", (1, 1, 1, 1, 8)),)), "'w' has 5 dims; GGUF allows"),
    "negative dim": (_blob(infos=(_info("w", (2**64 - 4, 1)),)), "has a negative dim"),
    "empty, but too large to address": (
        _blob(infos=(_info("w", (0, 2**62)),)),
        r"shape \(4611686018427387904, 0\) overflows a 64-bit byte count",
    ),
    "overflowing dims": (
        _blob(infos=(_info("w", (2**32, 2**32)),)),
        "overflows a 64-bit byte count",
    ),
    "row not whole blocks": (
        _blob(infos=(_info("q", (48, 1), 2),)),
        "rows of 48 values are not a whole number of q4_0 blocks",
    ),
    "alignment not a power of two": (
        _blob((_kv(_ALIGN, 4, struct.pack("<I", 48)),), align=48),
        "general.alignment 48 is not a power of two",
    ),
    "alignment zero": (
        _blob((_kv(_ALIGN, 4, struct.pack("<I", 0)),)),
        "general.alignment 0 is not a power of two",
    ),
    "alignment a string": (
        _blob((_kv(_ALIGN, 8, _s("32")),)),
        "general.alignment '32' is not a power of two",
    ),
    "offset not aligned": (
        _blob(infos=(_info("w", (4, 2), 0, 4),), data=bytes(64)),
        "'w': data offset 4 is not a multiple of 32",
    ),
    "data past the end": (
        _blob(infos=(_info("w", (4, 2), 0, 32),)),
        r"'w': data \[128, 160\) lies outside the file \(128 bytes\)",
    ),
    "data truncated": (
        _blob(data=bytes(31)),
        r"data \[96, 128\) lies outside the file \(127 bytes\)",
    ),
    "huge offset": (
        _blob(infos=(_info("w", (4, 2), 0, 2**64 - 32),)),
        "lies outside the file",
    ),
    "tensors overlap": (
        _blob(infos=(_info("a", (8,)), _info("b", (4,), 0, 0)), data=bytes(64)),
        "tensors 'a' and 'b' overlap",
    ),
    "duplicate tensor name": (
        _blob(infos=(_info("w", (4,)), _info("w", (4,), 0, 32)), data=bytes(64)),
        "duplicate tensor name 'w'",
    ),
    "tensor name not UTF-8": (
        _blob(infos=(_info(b"w\xc3(", (4,)),)),
        "the name of tensor 0 at byte 24 is not valid UTF-8",
    ),
    "unknown GGML type": (_blob(infos=(_info("w", (4,), 200),)), r"GGML type 200 \(unknown\)"),
    "Q8_K has no ember format": (_blob(infos=(_info("w", (256,), 15),)), r"type 15 \(Q8_K\)"),
    "truncated tensor info": (_VALID[:60], "the offset of tensor 'w' at byte 57 needs 8 bytes"),
}


@pytest.mark.parametrize(("blob", "pattern"), CORRUPT.values(), ids=CORRUPT.keys())
def test_each_corruption_is_one_clear_checkpoint_error(tmp_path: Path, blob: bytes, pattern: str):
    path = tmp_path / "bad.gguf"
    path.write_bytes(blob)
    with pytest.raises(CheckpointError, match=pattern) as info:
        read_gguf(path)
    assert str(info.value).startswith(f"{path}: ")


def test_a_missing_file_is_an_os_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        read_gguf(tmp_path / "absent.gguf")


# --- fuzz: mutated real files open or fail with CheckpointError, quickly --------------------


@functools.cache
def _seed() -> tuple[bytes, int, tuple[tuple[int, int], ...]]:
    """A small real file, where its data starts, and the (byte, width) of every integer in its
    header (counts, lengths, types, dims, offsets), found through GGUFReader's views."""
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seed.gguf"
        w = gguf.GGUFWriter(path, arch="toy")
        w.add_array("tokenizer.ggml.tokens", [f"t{i}" for i in range(12)])
        w.add_array("toy.nested", [[1, 2], [3]])
        w.add_uint32("toy.n", 5)
        w.add_tensor("f32", rng.standard_normal((2, 3)).astype(np.float32))
        w.add_tensor("f16", rng.standard_normal(5).astype(np.float16))
        w.add_tensor("q8", _quantized("q8_0", (2, 32), rng), raw_dtype=Q.Q8_0)
        w.add_tensor("q4k", _quantized("q4_k", (1, 256), rng), raw_dtype=Q.Q4_K)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        reader = gguf.GGUFReader(path)
        base = reader.data.ctypes.data
        fields = [*reader.fields.values(), *(t.field for t in reader.tensors)]
        ints = {
            (part.ctypes.data - base + i * part.itemsize, part.itemsize)
            for field in fields
            for part in field.parts
            if part.dtype.kind in "ui" and part.itemsize in (4, 8)
            for i in range(part.size)
        }
        blob, data_start = path.read_bytes(), reader.data_offset
        del reader, fields
    return blob, data_start, tuple(sorted(ints))


_BLOB, _DATA_START, _INT_AT = _seed()
_BIG = [0, 1, 2**31, 2**32 - 1, 2**32, 2**62, 2**63 - 1, 2**63, 2**64 - 1, len(_BLOB)]

_MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, _DATA_START - 1), st.integers(0, 7)),
    st.tuples(st.just("byte"), st.integers(0, _DATA_START - 1), st.integers(0, 255)),
    st.tuples(
        st.just("int"),
        st.sampled_from(_INT_AT),
        st.one_of(st.sampled_from(_BIG), st.integers(0, 2**64 - 1), st.integers(0, 300)),
    ),
    st.tuples(st.just("cut"), st.integers(0, len(_BLOB)), st.just(0)),
)


def _mutate(blob: bytes, mutations: list[tuple]) -> bytes:
    out = bytearray(blob)
    for op, at, value in mutations:
        if op == "flip" and at < len(out):
            out[at] ^= 1 << value
        elif op == "byte" and at < len(out):
            out[at] = value
        elif op == "int":
            pos, width = at
            out[pos : pos + width] = (value % (1 << 8 * width)).to_bytes(width, "little")
        elif op == "cut":
            del out[at:]
    return bytes(out)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


_NAMES = itertools.count()


def _open_or_checkpoint_error(directory: Path, blob: bytes) -> None:
    path = directory / f"m{next(_NAMES)}.gguf"
    path.write_bytes(blob)
    try:
        g = read_gguf(path)
    except CheckpointError as e:
        assert str(e).startswith(f"{path}: ")
    else:
        for name, t in g.tensors.items():
            a = g.array(name)
            assert a.nbytes == t.nbytes and t.offset + t.nbytes <= len(g.data)
            a.tobytes()  # every byte is inside the mapping
        del g
    finally:
        path.unlink()


def test_the_seed_reads_cleanly():
    assert len(_INT_AT) > 40 and len(_BLOB) < 4096
    with tempfile.TemporaryDirectory() as tmp:
        _open_or_checkpoint_error(Path(tmp), _BLOB)
        (Path(tmp) / "s.gguf").write_bytes(_BLOB)
        assert list(read_gguf(Path(tmp) / "s.gguf").tensors) == ["f32", "f16", "q8", "q4k"]


@settings(max_examples=400, deadline=2000)
@given(st.lists(_MUTATION, min_size=1, max_size=4))
def test_mutated_files_open_or_raise_checkpoint_error(fuzz_dir: Path, mutations: list[tuple]):
    _open_or_checkpoint_error(fuzz_dir, _mutate(_BLOB, mutations))


@settings(max_examples=200, deadline=2000)
@given(st.binary(max_size=400))
def test_random_bytes_after_a_header_open_or_raise_checkpoint_error(fuzz_dir: Path, tail: bytes):
    _open_or_checkpoint_error(fuzz_dir, b"GGUF" + struct.pack("<I", 3) + tail)
