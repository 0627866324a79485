"""The `ember` command: the demo executes the seed example; inspect, embed and quantize work on
real checkpoint files; every error is one line and status 1; bad arguments are usage errors
(status 2, with the usage text); a closed pipe ends it quietly."""

import errno
import json
import os
import subprocess
import sys

import gguf
import ml_dtypes
import numpy as np
import pytest
from conftest import write_gguf
from safetensors.numpy import save_file

from ember.cli import main
from ember.quant import FORMATS


def test_demo_executes_the_seed_example(capsys):
    assert main(["demo", "--repeats", "3"]) == 0
    out = capsys.readouterr().out
    assert "Embedding output shape: [Dim(4), Dim(16), Dim(256)]" in out
    assert "matches numpy: True" in out


@pytest.mark.parametrize("args", [["--repeats", "0"], ["--threads", "0"], ["--threads", "999"]])
def test_bad_arguments_are_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ember demo") and "error: argument" in err


# ---- checkpoints: inspect, embed, quantize ----------------------------------------------------


@pytest.fixture
def checkpoint(tmp_path):
    """A GGUF file with a Q4_K token table, a float32 table and a 1-D norm."""
    rng = np.random.default_rng(0)
    values = rng.standard_normal((32, 256)).astype(np.float32)
    tensors = {
        "token_embd.weight": ("q4_k", FORMATS["q4_k"].quantize(values)),
        "output.weight": values[:, :64].copy(),
        "output_norm.weight": values[0].copy(),
    }
    return write_gguf(tmp_path / "model.gguf", tensors), values


def test_inspect_lists_tensors_and_marks_the_embedding(checkpoint, capsys):
    path, _ = checkpoint
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    for expected in ("token_embd.weight", "q4_k", "32 x 256", "token embedding", "output.weight"):
        assert expected in out, out


def test_names_and_paths_print_as_they_are_with_control_characters_escaped(tmp_path, capsys):
    """A file's tensor names and the user's path are text, never rich markup (a stray closing
    tag used to raise), and their escape sequences cannot reach the terminal."""
    folder = tmp_path / "[bold]models"
    folder.mkdir()
    names = ["bad[/bold]name", "osc\x1b]8;;https://example.com\x1b\\link", "token_embd.weight"]
    path = write_gguf(folder / "m.gguf", {name: np.ones((2, 4), np.float32) for name in names})
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    for expected in (
        "[bold]models",
        "bad[/bold]name",
        "osc\\x1b]8;;https://example.com\\x1b\\link",
    ):
        assert expected in out, out


def test_embed_prints_json_writes_npy_and_shards(checkpoint, capsys, tmp_path):
    path, values = checkpoint
    want = FORMATS["q4_k"].dequantize(FORMATS["q4_k"].quantize(values))[[3, 0, 31]]
    assert main(["embed", str(path), "--ids", "3,0,31", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tensor"] == "token_embd.weight" and result["ids"] == [3, 0, 31]
    np.testing.assert_array_equal(np.asarray(result["vectors"], np.float32), want)
    out = tmp_path / "v.npy"
    args = ["embed", str(path), "--ids", "3,0,31", "--devices", "2", "--format", "npy", "-o"]
    assert main([*args, str(out)]) == 0
    assert np.load(out).tobytes() == want.tobytes()
    assert main(["embed", str(path), "--ids", "3", "--tensor", "output.weight"]) == 0
    assert "output.weight: 1 vector of 64 values" in capsys.readouterr().out.replace("\n", " ")


def test_embed_o_adds_npy_names_the_file_and_overwrites_only_with_force(
    checkpoint, tmp_path, capsys
):
    """`-o v` writes v.npy, as numpy.save names it, and says so; `-o` alone writes the file
    (--format npy is implied); an existing file is refused before any work (even the
    checkpoint is not read) unless --force, which replaces it."""
    path, values = checkpoint
    table = FORMATS["q4_k"].dequantize(FORMATS["q4_k"].quantize(values))
    assert (
        main(["embed", str(path), "--ids", "3,0", "--format", "npy", "-o", str(tmp_path / "v")])
        == 0
    )
    out = capsys.readouterr().out
    assert out == f"wrote (2, 256) float32 vectors of token_embd.weight to {tmp_path / 'v.npy'}\n"
    assert np.load(tmp_path / "v.npy").tobytes() == table[[3, 0]].tobytes()
    assert not (tmp_path / "v").exists()
    before = (tmp_path / "v.npy").read_bytes()
    absent = ["embed", str(tmp_path / "absent.gguf"), "--ids", "1"]
    for given in ("v", "v.npy"):
        for fmt in ([], ["--format", "npy"]):
            assert main([*absent, *fmt, "-o", str(tmp_path / given)]) == 1
            err = capsys.readouterr().err
            want = f"{str(tmp_path / 'v.npy')!r} exists; pass --force to overwrite it"
            assert err == f"ember embed: error: {want}\n", err
    assert (tmp_path / "v.npy").read_bytes() == before
    assert main(["embed", str(path), "--ids", "31", "-o", str(tmp_path / "v"), "--force"]) == 0
    assert capsys.readouterr().out.endswith(f" to {tmp_path / 'v.npy'}\n")
    assert np.load(tmp_path / "v.npy").tobytes() == table[[31]].tobytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf", "v.npy"]  # no .part


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("{dir}", "-o '{dir}' is a folder; give the .npy file to write"),
        ("{dir}/folder", "-o '{dir}/folder.npy' is a folder; give the .npy file to write"),
        ("{dir}/folder.npy", "-o '{dir}/folder.npy' is a folder; give the .npy file to write"),
        ("{dir}/missing/v.npy", "cannot write '{dir}/missing/v.npy': no folder '{dir}/missing'"),
    ],
)
def test_embed_o_that_cannot_be_written_is_refused_before_the_table_is_read(
    checkpoint, tmp_path, monkeypatch, capsys, given, message
):
    path, _ = checkpoint
    import ember.cli.tables

    def never(*args):
        raise AssertionError("the table was read before the output was checked")

    monkeypatch.setattr(ember.cli.tables, "pick_table", never)
    (tmp_path / "folder.npy").mkdir()
    for force in ([], ["--force"]):
        args = ["embed", str(path), "--ids", "1", "-o", given.format(dir=tmp_path), *force]
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err == f"ember embed: error: {message.format(dir=tmp_path)}\n", err
    assert not (tmp_path.parent / f"{tmp_path.name}.npy").exists()


def test_embed_o_writes_through_a_rename(checkpoint, tmp_path, monkeypatch, capsys):
    """A write that fails part way (a full disk) is one error line, and leaves neither a cut
    file nor a partial one: an old file stays whole."""
    path, _ = checkpoint

    def cut_short(file, array, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)):
            file = open(file, "wb")  # noqa: SIM115  (numpy.save opens a path itself)
        file.write(b"\x93NUMPY cut short")
        file.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", cut_short)
    old = tmp_path / "old.npy"
    old.write_bytes(b"keep me")
    for out, force in [(tmp_path / "new.npy", []), (old, ["--force"])]:
        assert main(["embed", str(path), "--ids", "1", "-o", str(out), *force]) == 1
        err = capsys.readouterr().err
        assert err == f"ember embed: error: cannot write {str(out)!r}: No space left on device\n"
    assert old.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf", "old.npy"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-o", "v.npy", "--format", "json"],
            "argument --format json: not allowed with argument -o",
        ),
        (
            ["--format", "table", "-o", "v.npy"],
            "argument --format table: not allowed with argument -o",
        ),
        (["--force"], "argument --force: only with -o"),
        (["--format", "json", "--force"], "argument --force: only with -o"),
        (["--format", "npy", "--force"], "argument --force: only with -o"),
        (["--format", "npy"], "argument --format npy: writes a file; give it with -o"),
    ],
)
def test_embed_output_arguments_are_usage_errors(
    checkpoint, tmp_path, monkeypatch, capsys, args, message
):
    path, _ = checkpoint
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["embed", str(path), "--ids", "1", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ember embed") and f"ember embed: error: {message}" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ("1,x", "expected comma-separated whole numbers, got '1,x'"),
        ("1,,2", "expected comma-separated whole numbers, got '1,,2'"),
        ("", "no ids given"),
        (" , ", "no ids given"),
        ("99999999999999999999", "id 99999999999999999999 at position (0,) is out of range"),
        ("1_0", "expected comma-separated whole numbers, got '1_0'"),
        ("\u0661", "expected comma-separated whole numbers, got '\u0661'"),
    ],
)
def test_malformed_ids_are_usage_errors(checkpoint, capsys, ids, message):
    path, _ = checkpoint
    with pytest.raises(SystemExit) as exit_info:
        main(["embed", str(path), f"--ids={ids}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ember embed") and f"argument --ids: {message}" in err, err


def test_embed_help_names_the_output_rules(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["embed", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert ".npy added when missing" in text and "let -o overwrite an existing file" in text


def test_quantize_round_trips_through_gguf_and_ember(checkpoint, tmp_path, capsys):
    path, values = checkpoint
    out = tmp_path / "q8.gguf"
    assert main(["quantize", str(path), "--tensor", "output.weight", "--format", "q8_0",
                 "-o", str(out)]) == 0  # fmt: skip
    expected = FORMATS["q8_0"].quantize(values[:, :64])
    [tensor] = gguf.GGUFReader(str(out)).tensors
    assert tensor.name == "output.weight" and tensor.tensor_type.name == "Q8_0"
    assert np.asarray(tensor.data).reshape(-1).tobytes() == expected.tobytes()
    import ember.weights

    data = ember.weights.load(out)["output.weight"]
    assert data.shape == (32, 64) and np.asarray(data.array).tobytes() == expected.tobytes()


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_quantize_takes_every_float_table(tmp_path, capsys, dtype):
    """bfloat16, the dtype of most checkpoints, included: the bytes are those of its float32
    values quantized."""
    import ml_dtypes
    from safetensors.numpy import save_file

    values = np.random.default_rng(3).standard_normal((8, 256)).astype(np.float32)
    stored = values.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)
    save_file({"model.embed_tokens.weight": stored}, tmp_path / "model.safetensors")
    out = tmp_path / "q.gguf"
    args = ["quantize", str(tmp_path / "model.safetensors"), "--format", "q4_k", "-o", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    [tensor] = gguf.GGUFReader(str(out)).tensors
    expected = FORMATS["q4_k"].quantize(stored.astype(np.float32))
    assert np.asarray(tensor.data).reshape(-1).tobytes() == expected.tobytes()


def test_a_tensor_ember_does_not_read_is_listed_and_refused_by_name(tmp_path, capsys):
    path = tmp_path / "model.safetensors"
    save_file({"freqs": np.ones((2, 2), np.complex64), "embed": np.ones((4, 3), np.float32)}, path)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2 tensors" in out and "not read" in out and "freqs" in out
    assert main(["embed", str(path), "--tensor", "freqs", "--ids", "0"]) == 1
    assert "tensor 'freqs' holds complex64 values" in capsys.readouterr().err


def test_an_unread_head_is_named_not_passed_over_for_the_embedding(tmp_path, capsys):
    path = tmp_path / "model.safetensors"
    tables = {"lm_head.weight": np.ones((4, 3), np.complex64), "embed": np.ones((4, 3), np.float32)}
    save_file(tables, path)
    np.save(tmp_path / "h.npy", np.ones((1, 3), np.float32))
    assert main(["logits", str(path), "--hidden", str(tmp_path / "h.npy")]) == 1
    assert "tensor 'lm_head.weight' holds complex64 values" in capsys.readouterr().err


def test_an_empty_table_is_one_line_not_a_traceback(tmp_path, capsys):
    empty = {
        "token_embd.weight": np.zeros((0, 8), np.float32),
        "wide": np.zeros((4, 0), np.float32),
    }
    path = str(write_gguf(tmp_path / "m.gguf", empty))
    np.save(tmp_path / "h.npy", np.ones((1, 8), np.float32))
    for args in (["embed", path, "--ids", "0"], ["embed", path, "--tensor", "wide", "--ids", "0"],
                 ["logits", path, "--hidden", str(tmp_path / "h.npy")]):  # fmt: skip
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is an empty table: its shape is" in err, err


def test_names_in_plain_lines_and_errors_cannot_reach_the_terminal(tmp_path, capsys):
    """`embed -o` and errors print a name from the file in a plain line: escaped, as the
    tables print it, and a lone surrogate (valid JSON) is written, not a UnicodeEncodeError."""
    name = "t\x1b]0;title\x07\ud800"
    header = json.dumps({name: {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 32]}})
    raw = header.encode()
    (tmp_path / "m.safetensors").write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(32))
    path, out = str(tmp_path / "m.safetensors"), str(tmp_path / "v.npy")
    assert main(["embed", path, "--tensor", name, "--ids", "1", "-o", out]) == 0
    assert main(["embed", path, "--tensor", name, "--ids", "7"]) == 1
    captured = capsys.readouterr()
    for text in (captured.out, captured.err):
        assert "\x1b" not in text and "\x07" not in text
    assert "t\\x1b]0;title\\x07\\ud800" in captured.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inspect", "{dir}/absent.gguf"], "no checkpoint at"),
        (["embed", "{path}", "--ids", "1", "--tensor", "token_embd"], "no tensor 'token_embd'"),
        (["embed", "{path}", "--ids", "1", "--tensor", "output_norm.weight"], "is not a table"),
        (["embed", "{path}", "--ids", "1,99"], "id 99 at position (1,) is out of range"),
        (["quantize", "{path}", "--format", "q8_0", "-o", "{dir}/o.gguf"], "quantize a float"),
        (["inspect", "{dir}/corrupt.gguf"], "corrupt.gguf"),
        (["inspect", "{dir}/q8k.gguf"], "Q8_K"),
    ],
)
def test_every_error_is_one_line_and_status_1(checkpoint, tmp_path, capsys, args, message):
    path, _ = checkpoint
    (tmp_path / "corrupt.gguf").write_bytes(path.read_bytes()[:100])
    writer = gguf.GGUFWriter(str(tmp_path / "q8k.gguf"), "test")
    q8k = gguf.GGMLQuantizationType.Q8_K  # a type no GGUF table uses
    writer.add_tensor("t", np.zeros((2, 292), np.uint8), raw_dtype=q8k)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    filled = [a.format(dir=tmp_path, path=path) for a in args]
    assert main(filled) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"ember {args[0]}: error:" in err and message in err, err


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("q9_9", "unknown format 'q9_9'; ember writes: "),
        ("iq2_xxs", "llama-quantize"),
        ("nvfp4", "FP8 sub-block"),
        ("rowwise_int8", "no GGUF type"),
    ],
)
def test_a_format_quantize_does_not_write_is_a_usage_error(
    checkpoint, tmp_path, capsys, fmt, message
):
    path, _ = checkpoint
    with pytest.raises(SystemExit) as exit_info:
        main(["quantize", str(path), "--format", fmt, "-o", str(tmp_path / "o.gguf")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ember quantize") and "argument --format: " in err, err
    assert message in err and not (tmp_path / "o.gguf").exists()


def test_text_needs_a_vocabulary(checkpoint, capsys):
    path, _ = checkpoint
    assert main(["embed", str(path), "--text", "hello"]) == 1
    assert "carries no vocabulary; pass --tokenizer" in capsys.readouterr().err
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        assert main(["embed", str(path), "--text", "hi", "--tokenizer", "t.json"]) == 1
        assert "pip install tokenizers" in capsys.readouterr().err


def test_quantize_checks_its_output_before_reading_the_table(
    checkpoint, tmp_path, monkeypatch, capsys
):
    """A bad output path is an error before the table is read (a large table quantizes for
    most of a minute), the checkpoint itself is never overwritten, and another existing file
    only with --force."""
    path, values = checkpoint
    import ember.cli.tables

    def never(*args):
        raise AssertionError("the table was read before the output was checked")

    args = ["quantize", str(path), "--tensor", "output.weight", "--format", "q8_0", "-o"]
    with monkeypatch.context() as patch:
        patch.setattr(ember.cli.tables, "pick_table", never)
        for output, message in [
            (tmp_path / "missing" / "q.gguf", "no folder"),
            (tmp_path, "is a folder"),
            (path, "is the checkpoint being read"),
            (tmp_path / "." / path.name, "is the checkpoint being read"),
        ]:
            for force in ([], ["--force"]):
                assert main([*args, str(output), *force]) == 1
                err = capsys.readouterr().err
                assert err.count("\n") == 1 and message in err, err
        assert main(["quantize", str(tmp_path), "--tensor", "output.weight", "--format", "q8_0",
                     "-o", str(path), "--force"]) == 1  # fmt: skip
        assert "is the checkpoint being read" in capsys.readouterr().err
        existing = tmp_path / "old.gguf"
        existing.write_bytes(b"keep me")
        assert main([*args, str(existing)]) == 1
        assert "exists; pass --force" in capsys.readouterr().err
        assert existing.read_bytes() == b"keep me"
    assert main([*args, str(existing), "--force"]) == 0
    [tensor] = gguf.GGUFReader(str(existing)).tensors
    expected = FORMATS["q8_0"].quantize(values[:, :64])
    assert np.asarray(tensor.data).reshape(-1).tobytes() == expected.tobytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf", "old.gguf"]  # no .part


def test_quantize_write_that_fails_part_way_is_one_line_and_keeps_the_old_file(
    checkpoint, tmp_path, monkeypatch, capsys
):
    """The GGUF is written beside -o and renamed (as embed's and logits' files are): a full disk
    part way is ember's one error line, the old file whole and no partial file left."""
    path, _ = checkpoint

    def cut_short(self, *args, **kwargs):  # after the header is written
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", cut_short)
    old = tmp_path / "old.gguf"
    old.write_bytes(b"keep me")
    args = ["quantize", str(path), "--tensor", "output.weight", "--format", "q8_0", "-o"]
    assert main([*args, str(old), "--force"]) == 1
    err = capsys.readouterr().err
    assert err == f"ember quantize: error: cannot write {str(old)!r}: No space left on device\n"
    assert old.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf", "old.gguf"]


@pytest.mark.parametrize("output", ["json", "table"])
def test_a_closed_pipe_ends_the_command_quietly(checkpoint, output):
    """`ember embed ... | head -c 10`: no traceback, the status of a tool SIGPIPE ended, for
    JSON and for rich's tables alike."""
    path, _ = checkpoint
    command = [sys.executable, "-m", "ember.cli", "embed", str(path), "--format", output]
    process = subprocess.Popen(
        [*command, "--ids", ",".join(["3"] * 2000)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # the reader is gone before the command writes a byte
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and err == "", err


@pytest.mark.parametrize("output", ["json", "table"])
def test_stdout_that_refuses_writes_is_one_line_and_status_1(checkpoint, output):
    """`ember embed ... > /dev/full`: the error in one line, no traceback."""
    path, _ = checkpoint
    command = [sys.executable, "-m", "ember.cli", "embed", str(path), "--ids", "1,2"]
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*command, "--format", output], stdout=full, stderr=subprocess.PIPE, timeout=120
        )
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert err == "ember embed: error: cannot write to stdout: No space left on device\n", err


def test_a_file_the_system_refuses_is_one_line_and_stdout_stays(capsys):
    """An OSError reading a file is the file's error: stdout is not touched."""
    assert main(["inspect", "/proc/self/mem"]) == 1
    print("after")
    out, err = capsys.readouterr()
    assert out == "after\n" and err.startswith("ember inspect: error: ") and err[-1] == "\n"
    assert err.count("\n") == 1 and err.endswith(": /proc/self/mem\n"), err


def test_a_closed_stdout_is_one_line_and_status_1(checkpoint):
    """`ember embed ... >&-`: Python's stdout is None."""
    path, _ = checkpoint
    script = 'exec "$0" -m ember.cli embed "$1" --ids 1 >&-'
    done = subprocess.run(
        ["sh", "-c", script, sys.executable, str(path)], stderr=subprocess.PIPE, timeout=120
    )
    err = done.stderr.decode()
    assert (
        done.returncode == 1 and err == "ember embed: error: cannot write to stdout: it is closed\n"
    )


def test_quantize_with_its_reader_gone_ends_quietly(checkpoint, tmp_path):
    """Its progress bar goes to stdout: a closed pipe is status 141, as for the others."""
    path, _ = checkpoint
    command = [sys.executable, "-m", "ember.cli", "quantize", str(path), "--format", "q8_0"]
    process = subprocess.Popen(
        [*command, "--tensor", "output.weight", "-o", str(tmp_path / "q.gguf")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and err == "", err


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16])
def test_embed_json_writes_nan_and_infinities_as_null(tmp_path, capsys, dtype):
    table = np.arange(12, dtype=np.float32).reshape(3, 4)
    table[1, :3] = [np.nan, np.inf, -np.inf]
    save_file({"model.embed_tokens.weight": table.astype(dtype)}, tmp_path / "m.safetensors")
    assert main(["embed", str(tmp_path / "m.safetensors"), "--ids", "1,2", "--format", "json"]) == 0
    vectors = json.loads(capsys.readouterr().out)["vectors"]  # strict JSON: no NaN literal
    assert vectors == [[None, None, None, 7.0], [8.0, 9.0, 10.0, 11.0]]


def test_tokenizer_without_text_is_a_usage_error(checkpoint, capsys):
    path, _ = checkpoint
    with pytest.raises(SystemExit) as exit_info:
        main(["embed", str(path), "--ids", "1", "--tokenizer", "tokenizer.json"])
    assert exit_info.value.code == 2
    assert "argument --tokenizer: only with --text" in capsys.readouterr().err
