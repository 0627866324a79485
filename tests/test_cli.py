"""The `ember` command: the demo executes the seed example; inspect, embed and quantize work on
real checkpoint files; every error is one line and status 1; bad arguments are usage errors
(status 2, with the usage text); a closed pipe ends it quietly."""

import json
import subprocess
import sys

import gguf
import numpy as np
import pytest

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
    writer = gguf.GGUFWriter(str(tmp_path / "model.gguf"), "test")
    q4k = gguf.GGMLQuantizationType(FORMATS["q4_k"].ggml_type)
    writer.add_tensor("token_embd.weight", FORMATS["q4_k"].quantize(values), raw_dtype=q4k)
    writer.add_tensor("output.weight", values[:, :64].copy())
    writer.add_tensor("output_norm.weight", values[0].copy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return tmp_path / "model.gguf", values


def test_inspect_lists_tensors_and_marks_the_embedding(checkpoint, capsys):
    path, _ = checkpoint
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    for expected in ("token_embd.weight", "q4_k", "32 x 256", "token embedding", "output.weight"):
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
    assert "output.weight: 1 vectors of 64 values" in capsys.readouterr().out.replace("\n", " ")


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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inspect", "{dir}/absent.gguf"], "no checkpoint at"),
        (["embed", "{path}", "--ids", "1", "--tensor", "token_embd"], "no tensor 'token_embd'"),
        (["embed", "{path}", "--ids", "1", "--tensor", "output_norm.weight"], "is not a table"),
        (["embed", "{path}", "--ids", "1,99"], "id 99 at position (1,) is out of range"),
        (["embed", "{path}", "--ids", "1,x"], "comma-separated whole numbers"),
        (["embed", "{path}", "--ids", "1", "--format", "npy"], "give it with -o"),
        (["quantize", "{path}", "--format", "q9_9", "-o", "{dir}/o.gguf"], "unknown format"),
        (["quantize", "{path}", "--format", "iq2_xxs", "-o", "{dir}/o.gguf"], "llama-quantize"),
        (["quantize", "{path}", "--format", "rowwise_int8", "-o", "{dir}/o.gguf"], "no GGUF type"),
        (["embed", "{path}", "--ids", "99999999999999999999"], "out of range of any vocab"),
        (["embed", "{path}", "--ids", "1,,2"], "comma-separated whole numbers"),
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


def test_a_closed_pipe_ends_the_command_quietly(checkpoint):
    """`ember embed ... | head -c 10`: no traceback, the status of a tool SIGPIPE ended."""
    path, _ = checkpoint
    command = [sys.executable, "-m", "ember.cli", "embed", str(path), "--format", "json"]
    process = subprocess.Popen(
        [*command, "--ids", ",".join(["3"] * 2000)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # the reader is gone before the command writes a byte
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and err == "", err
