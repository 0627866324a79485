"""`ember logits`: a checkpoint's head (its one untied head, else its embedding table) over
hidden states from a .npy file, on both backends, with the other commands' one-line errors,
usage errors and quiet closed pipe. Tables and hidden states are small integers, so every
logit is exact and ties happen."""

import errno
import json
import subprocess
import sys
from pathlib import Path

import gguf
import ml_dtypes
import numpy as np
import pytest
from conftest import BACKENDS, write_gguf

from ember.cli import main
from ember.quant import FORMATS

VOCAB, WIDTH = 40, 64


@pytest.fixture
def tied(tmp_path):
    """A tied model's GGUF: the table (float16) and a norm, no output.weight; hidden states."""
    rng = np.random.default_rng(0)
    table = rng.integers(-3, 4, size=(VOCAB, WIDTH)).astype(np.float16)
    table[30] = table[4]  # rows 4 and 30 tie on every token
    path = write_gguf(
        tmp_path / "tied.gguf",
        {"token_embd.weight": table, "output_norm.weight": np.ones(WIDTH, np.float32)},
    )
    hidden = rng.integers(-2, 3, size=(6, WIDTH)).astype(np.float32)
    hidden[2] = 0  # every logit 0
    np.save(tmp_path / "hidden.npy", hidden)
    return path, table.astype(np.float32), tmp_path / "hidden.npy", hidden


def run_json(capsys, *args) -> dict:
    assert main(["logits", *map(str, args), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("backend", BACKENDS)
def test_top_k_argmax_logsumexp_and_logits_of_the_tied_table(tied, tmp_path, capsys, backend):
    path, table, hidden_path, hidden = tied
    exact = hidden @ table.T  # exact: small integers
    order = np.argsort(-exact, axis=-1, kind="stable")  # ties to the lowest id
    common = [path, "--hidden", hidden_path, "--backend", backend]
    result = run_json(capsys, *common)  # top 5 by default
    assert result["tensor"] == "token_embd.weight" and result["output"] == "top_k"
    np.testing.assert_array_equal(result["ids"], order[:, :5])
    np.testing.assert_array_equal(result["values"], np.take_along_axis(exact, order[:, :5], -1))
    assert result["ids"][2] == [0, 1, 2, 3, 4]
    result = run_json(capsys, *common, "--top-k", VOCAB)
    np.testing.assert_array_equal(result["ids"], order)
    result = run_json(capsys, *common, "--argmax")
    np.testing.assert_array_equal(result["ids"], order[:, 0])
    result = run_json(capsys, *common, "--logsumexp")
    want = np.log(np.exp(exact.astype(np.float64)).sum(axis=-1))
    np.testing.assert_allclose(result["logsumexp"], want, rtol=1e-6)
    out = tmp_path / "logits.npy"
    assert main(["logits", *map(str, common), "--out", str(out)]) == 0
    assert f"wrote (6, {VOCAB}) float32 logits of token_embd.weight" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(out), exact)


def test_the_table_lists_each_tokens_ids_then_values(tied, capsys):
    path, table, hidden_path, hidden = tied
    assert main(["logits", str(path), "--hidden", str(hidden_path), "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert f"token_embd.weight, {VOCAB} rows; 6 tokens" in out.splitlines()[0]
    exact = hidden @ table.T
    first = np.argsort(-exact[0], kind="stable")[:2]
    assert f"{first[0]} {first[1]}" in out and f"{exact[0, first[0]]:.4f}" in out


@pytest.mark.parametrize(
    ("args", "title"),
    [(["--top-k", "2"], "top 2"), (["--argmax"], "greedy ids"), (["--logsumexp"], "log-sum-exp")],
)
def test_table_titles_are_one_line_within_the_table(tied, capsys, args, title):
    """Rich wraps a title at the table's width (an argmax table is ~15 columns wide, whatever
    the terminal): the title is a word or two, the tensor and counts a line of their own."""
    path, _, hidden_path, _ = tied
    assert main(["logits", str(path), "--hidden", str(hidden_path), *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    border = next(i for i, line in enumerate(lines) if line.startswith("┏"))
    assert border == 2, lines  # the facts line, the title line, then the table
    assert lines[0] == f"token_embd.weight, {VOCAB} rows; 6 tokens"
    assert lines[1].strip() == title and len(lines[1].rstrip()) <= len(lines[border])


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((WIDTH,), np.float32),
        ((2, 3, WIDTH), np.float16),
        ((4, WIDTH), ml_dtypes.bfloat16),
        ((3, WIDTH), np.dtype(">f4")),
        ((3, WIDTH), np.dtype(">f2")),
    ],
)
def test_hidden_states_of_every_rank_and_float_dtype(tied, tmp_path, capsys, shape, dtype):
    """One vector (whose ids, as `nn.LMHead`'s, have no token axis), (batch, seq, hidden),
    bfloat16 (which .npy stores as 2-byte void), and big-endian files."""
    path, table, _, _ = tied
    hidden = np.random.default_rng(1).integers(-2, 3, size=shape).astype(dtype)
    np.save(tmp_path / "h.npy", hidden)
    result = run_json(capsys, path, "--hidden", tmp_path / "h.npy", "--argmax")
    exact = hidden.astype(np.float32).reshape(-1, WIDTH) @ table.T
    want = np.argmax(exact, axis=-1).reshape(shape[:-1])
    assert np.asarray(result["ids"]).shape == want.shape
    np.testing.assert_array_equal(result["ids"], want)


def test_a_q8_0_table_is_read_as_gguf_decodes_it(tmp_path, capsys):
    rng = np.random.default_rng(2)
    values = rng.standard_normal((VOCAB, WIDTH)).astype(np.float32)
    write_gguf(
        tmp_path / "q8.gguf", {"token_embd.weight": ("q8_0", FORMATS["q8_0"].quantize(values))}
    )
    hidden = rng.standard_normal((3, WIDTH)).astype(np.float32)
    np.save(tmp_path / "h.npy", hidden)
    result = run_json(capsys, tmp_path / "q8.gguf", "--hidden", tmp_path / "h.npy", "--argmax")
    q8 = gguf.GGMLQuantizationType.Q8_0
    table = gguf.quants.dequantize(FORMATS["q8_0"].quantize(values), q8).astype(np.float64)
    np.testing.assert_array_equal(result["ids"], np.argmax(hidden @ table.T, axis=-1))


def test_an_untied_head_is_the_default_and_the_table_can_be_named(tmp_path, capsys):
    rng = np.random.default_rng(3)
    embedding = rng.integers(-3, 4, size=(VOCAB, WIDTH)).astype(np.float32)
    head = rng.integers(-3, 4, size=(VOCAB + 8, WIDTH)).astype(np.float32)
    path = write_gguf(tmp_path / "m.gguf", {"token_embd.weight": embedding, "output.weight": head})
    hidden = rng.integers(-2, 3, size=(3, WIDTH)).astype(np.float32)
    np.save(tmp_path / "h.npy", hidden)
    common = [path, "--hidden", tmp_path / "h.npy", "--argmax"]
    result = run_json(capsys, *common)
    assert result["tensor"] == "output.weight"
    np.testing.assert_array_equal(result["ids"], np.argmax(hidden @ head.T, axis=-1))
    result = run_json(capsys, *common, "--tensor", "token_embd.weight")
    np.testing.assert_array_equal(result["ids"], np.argmax(hidden @ embedding.T, axis=-1))


def test_safetensors_tied_and_untied(tmp_path, capsys):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(4)
    embedding = rng.integers(-3, 4, size=(VOCAB, WIDTH)).astype(np.float32)
    head = rng.integers(-3, 4, size=(VOCAB, WIDTH)).astype(np.float32)
    hidden = rng.integers(-2, 3, size=(3, WIDTH)).astype(np.float32)
    np.save(tmp_path / "h.npy", hidden)
    save_file({"model.embed_tokens.weight": embedding}, str(tmp_path / "tied.safetensors"))
    result = run_json(capsys, tmp_path / "tied.safetensors", "--hidden", tmp_path / "h.npy")
    assert result["tensor"] == "model.embed_tokens.weight"
    np.testing.assert_array_equal(
        result["ids"][0], np.argsort(-hidden[0] @ embedding.T, kind="stable")[:5]
    )
    tensors = {"model.embed_tokens.weight": embedding, "lm_head.weight": head}
    save_file(tensors, str(tmp_path / "untied.safetensors"))
    args = [tmp_path / "untied.safetensors", "--hidden", tmp_path / "h.npy", "--argmax"]
    result = run_json(capsys, *args)
    assert result["tensor"] == "lm_head.weight"
    np.testing.assert_array_equal(result["ids"], np.argmax(hidden @ head.T, axis=-1))


def test_greedy_ids_of_the_real_checkpoint_slice(capsys, tmp_path):
    """SmolLM2-135M-Instruct's tied Q8_0 table cut to 768 rows, with hidden states and
    transformers' argmax stored by tests/data/make_tied_reference.py."""
    data = Path(__file__).parent / "data"
    reference = np.load(data / "smollm2_tied_reference.npz")
    np.save(tmp_path / "h.npy", reference["hidden"])
    args = [data / "smollm2_head_q8_0.gguf", "--hidden", tmp_path / "h.npy", "--argmax"]
    result = run_json(capsys, *args)
    np.testing.assert_array_equal(reference["rows"][result["ids"]], reference["hf_top"][:, 0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hidden", "{dir}/wide.npy"], "width 65; the head token_embd.weight (40 x 64)"),
        (["--hidden", "{dir}/ints.npy"], "holds int32 values; the head takes float32"),
        (["--hidden", "{dir}/f64.npy"], "holds float64 values; the head takes float32"),
        (["--hidden", "{dir}/rank4.npy"], "has shape (1, 1, 1, 64); the head takes"),
        (["--hidden", "{dir}/empty.npy"], "has shape (3, 0)"),
        (["--hidden", "{dir}/hidden.npy", "--top-k", "41"], "--top-k 41 is more than the 40"),
        (["--hidden", "{dir}/absent.npy"], "error: no file at '{dir}/absent.npy'"),
        (["--hidden", "{dir}/arrays.npz"], "is an .npz archive"),
        (["--hidden", "{dir}/text.npy"], "text.npy: it is not a .npy file; give a numeric .npy"),
        (["--hidden", "{dir}/objects.npy"], "holds pickled Python objects; give a numeric .npy"),
        (["--hidden", "{dir}/cut.npy"], "cut.npy: it is damaged or cut short; give a numeric"),
        (["--hidden", "{dir}/cut_header.npy"], "cut_header.npy: its header is damaged or cut"),
        (["--hidden", "{dir}/hidden.npy", "--tensor", "output"], "no tensor 'output'"),
        (["--hidden", "{dir}/hidden.npy", "--tensor", "output_norm.weight"], "is not a table"),
    ],
)
def test_every_error_is_one_line_and_status_1(tied, tmp_path, capsys, args, message):
    path, _, _, _ = tied
    np.save(tmp_path / "wide.npy", np.zeros((2, WIDTH + 1), np.float32))
    np.save(tmp_path / "ints.npy", np.zeros((2, WIDTH), np.int32))
    np.save(tmp_path / "f64.npy", np.zeros((2, WIDTH)))
    np.save(tmp_path / "rank4.npy", np.zeros((1, 1, 1, WIDTH), np.float32))
    np.save(tmp_path / "empty.npy", np.zeros((3, 0), np.float32))
    np.savez(tmp_path / "arrays.npz", a=np.zeros((2, WIDTH), np.float32))
    (tmp_path / "text.npy").write_text("not an array")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None]), allow_pickle=True)
    np.save(tmp_path / "cut.npy", np.zeros((40, WIDTH), np.float32))
    (tmp_path / "cut_header.npy").write_bytes((tmp_path / "cut.npy").read_bytes()[:40])
    (tmp_path / "cut.npy").write_bytes((tmp_path / "cut.npy").read_bytes()[:500])
    assert main(["logits", str(path), *(a.format(dir=tmp_path) for a in args)]) == 1
    err = capsys.readouterr().err
    message = message.format(dir=tmp_path)
    assert err.count("\n") == 1 and "ember logits: error:" in err and message in err, err
    assert "allow_pickle" not in err, err  # numpy's advice to load untrusted pickles


def test_several_untied_heads_must_be_named(tmp_path, capsys):
    from safetensors.numpy import save_file

    table = np.zeros((VOCAB, WIDTH), np.float32)
    save_file({"output.weight": table, "lm_head.weight": table}, str(tmp_path / "m.safetensors"))
    np.save(tmp_path / "h.npy", np.zeros((1, WIDTH), np.float32))
    assert main(["logits", str(tmp_path / "m.safetensors"), "--hidden", str(tmp_path / "h.npy")])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "several heads: output.weight, lm_head.weight" in err


@pytest.mark.parametrize(
    "args",
    [
        ["--top-k", "0"],
        ["--argmax", "--logsumexp"],
        ["--top-k", "3", "--argmax"],
        ["--out", "x.npy", "--format", "json"],
        ["--format", "table", "--out", "x.npy"],
        ["--force"],
        ["--argmax", "--force"],
        [],
    ],
    ids=[
        "k0",
        "two-modes",
        "k-and-argmax",
        "out-and-json",
        "out-and-table",
        "force-alone",
        "force-without-out",
        "no-hidden",
    ],
)
def test_bad_arguments_are_usage_errors(tied, tmp_path, monkeypatch, capsys, args):
    path, _, hidden_path, _ = tied
    monkeypatch.chdir(tmp_path)
    hidden = [] if not args else ["--hidden", str(hidden_path)]
    with pytest.raises(SystemExit) as exit_info:
        main(["logits", str(path), *hidden, *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ember logits") and "ember logits: error: " in err, err
    assert ("argument --" if args else "required: --hidden") in err, err
    if "--out" in args:
        assert "argument --format: not allowed with argument --out" in err, err
        assert not (tmp_path / "x.npy").exists()
    if "--force" in args:  # --force is said to mean something only with the file it may replace
        assert "argument --force: only with --out" in err, err


@pytest.mark.parametrize("output", ["json", "table"])
def test_a_closed_pipe_ends_the_command_quietly(tied, tmp_path, output):
    path, _, _, _ = tied
    np.save(tmp_path / "many.npy", np.ones((3000, WIDTH), np.float32))
    command = [sys.executable, "-m", "ember.cli", "logits", str(path), "--format", output]
    process = subprocess.Popen(
        [*command, "--hidden", str(tmp_path / "many.npy")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # the reader is gone before the command writes a byte
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and err == "", err


@pytest.mark.parametrize("dtype", ["float64", "int8", "uint8", "int32"])
def test_a_table_of_a_dtype_the_head_does_not_take_is_one_line(tmp_path, capsys, dtype):
    from safetensors.numpy import save_file

    table = np.ones((VOCAB, WIDTH), dtype)
    save_file({"model.embed_tokens.weight": table}, str(tmp_path / "m.safetensors"))
    np.save(tmp_path / "h.npy", np.ones((2, WIDTH), np.float32))
    args = ["logits", str(tmp_path / "m.safetensors"), "--hidden", str(tmp_path / "h.npy")]
    assert main(args) == 1
    err = capsys.readouterr().err
    want = (
        f"ember logits: error: model.embed_tokens.weight holds {dtype} values; the head takes "
        "a table of float32, bfloat16 or float16 values, or a quantized GGUF one\n"
    )
    assert err == want, err


def test_out_names_the_file_written_and_overwrites_only_with_force(tied, tmp_path, capsys):
    path, table, hidden_path, hidden = tied
    exact = hidden @ table.T
    common = ["logits", str(path), "--hidden", str(hidden_path)]
    assert main([*common, "--out", str(tmp_path / "lg")]) == 0  # numpy.save adds .npy
    assert capsys.readouterr().out.endswith(f" to {tmp_path / 'lg.npy'}\n")
    np.testing.assert_array_equal(np.load(tmp_path / "lg.npy"), exact)
    assert not (tmp_path / "lg").exists()
    # An existing file is refused before the work: even the checkpoint is not read.
    before = (tmp_path / "lg.npy").read_bytes()
    for out in ("lg", "lg.npy"):
        absent = ["logits", str(tmp_path / "absent.gguf"), "--hidden", str(hidden_path)]
        assert main([*absent, "--out", str(tmp_path / out)]) == 1
        err = capsys.readouterr().err
        want = f"{str(tmp_path / 'lg.npy')!r} exists; pass --force to overwrite it"
        assert err == f"ember logits: error: {want}\n", err
    assert (tmp_path / "lg.npy").read_bytes() == before


def test_out_with_force_replaces_the_file(tied, tmp_path, capsys):
    path, table, hidden_path, hidden = tied
    np.save(tmp_path / "lg.npy", np.zeros(3))
    args = ["logits", str(path), "--hidden", str(hidden_path), "--out", str(tmp_path / "lg.npy")]
    assert main([*args, "--force"]) == 0
    assert capsys.readouterr().out.endswith(f" to {tmp_path / 'lg.npy'}\n")
    np.testing.assert_array_equal(np.load(tmp_path / "lg.npy"), hidden @ table.T)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_out_that_fails_part_way_is_one_line_and_leaves_no_file(
    tied, tmp_path, monkeypatch, capsys
):
    """A full disk during the write: ember's one error line (not a traceback), and neither a
    cut file nor a partial one; an old file stays whole."""
    path, _, hidden_path, _ = tied

    def cut_short(file, array, *args, **kwargs):
        file.write(b"\x93NUMPY cut short")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", cut_short)
    (tmp_path / "old.npy").write_bytes(b"keep me")
    for out, force in [(tmp_path / "new.npy", []), (tmp_path / "old.npy", ["--force"])]:
        args = ["logits", str(path), "--hidden", str(hidden_path), "--out", str(out), *force]
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err == f"ember logits: error: cannot write {str(out)!r}: No space left on device\n"
    assert (tmp_path / "old.npy").read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hidden.npy", "old.npy", "tied.gguf"]


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("{dir}", "is a folder; give the .npy file to write"),
        ("{dir}/folder.npy", "folder.npy' is a folder"),
        ("{dir}/missing/lg.npy", "no folder"),
    ],
)
def test_out_that_cannot_be_written_is_refused(tied, tmp_path, capsys, out, message):
    path, _, hidden_path, _ = tied
    (tmp_path / "folder.npy").mkdir()
    args = ["logits", str(path), "--hidden", str(hidden_path), "--out", out.format(dir=tmp_path)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path.parent / f"{tmp_path.name}.npy").exists()


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


@pytest.mark.parametrize("mode", [[], ["--logsumexp"], ["--top-k", str(VOCAB)]])
def test_json_writes_nan_and_infinities_as_null(tied, tmp_path, capsys, mode):
    """Hidden states of NaN, and of one infinity (logits +inf, -inf, and NaN where the table
    holds 0): the output parses as strict JSON, null exactly where numpy's value is not
    finite."""
    path, table, _, _ = tied
    hidden = np.zeros((3, WIDTH), np.float32)
    hidden[0] = np.nan
    hidden[1, 0] = np.inf
    hidden[2, :4] = 1
    np.save(tmp_path / "h.npy", hidden)
    with np.errstate(invalid="ignore"):
        exact = hidden @ table.T
        want = np.log(np.exp(exact.astype(np.float64)).sum(axis=-1))
    assert {np.inf, -np.inf} <= set(exact[1]) and np.isnan(exact[1]).any()
    assert (
        main(["logits", str(path), "--hidden", str(tmp_path / "h.npy"), *mode, "--format", "json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out, parse_constant=_no_constants)
    if mode == ["--logsumexp"]:
        assert result["logsumexp"][:2] == [None, None]
        np.testing.assert_allclose(result["logsumexp"][2], want[2], rtol=1e-6)
        return
    for token, (ids, values) in enumerate(zip(result["ids"], result["values"], strict=True)):
        for i, value in zip(ids, values, strict=True):
            if np.isfinite(exact[token, i]):
                assert value == exact[token, i], (token, i, value)
            else:
                assert value is None, (token, i, value)
    assert result["values"][0] == [None] * len(result["values"][0])
    assert result["values"][2] == sorted(exact[2], reverse=True)[: len(result["values"][2])]


def test_help_names_the_hidden_shapes_and_the_top_k_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["logits", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(hidden,), (tokens, hidden) or (batch, seq, hidden)" in text
    assert "(default k: 5)" in text
    assert "--force" in text and "not with --out" in text and "as null" in text


@pytest.mark.parametrize("mode", [[], ["--argmax"], ["--logsumexp"]])
def test_one_vector_prints_one_row_of_the_table(tied, tmp_path, capsys, mode):
    path, _, _, _ = tied
    np.save(tmp_path / "one.npy", np.ones(WIDTH, np.float32))
    assert main(["logits", str(path), "--hidden", str(tmp_path / "one.npy"), *mode]) == 0
    out = capsys.readouterr().out
    assert "1 token" in out and "│     0 │" in out, out
