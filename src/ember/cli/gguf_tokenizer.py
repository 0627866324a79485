"""A GGUF file's own vocabulary as a `tokenizers.Tokenizer`, so that `--text` needs no
tokenizer.json: the `tokenizer.ggml.*` metadata rebuilt the way llama.cpp reads it.

- model "gpt2": byte-level BPE from the tokens and merges, split first by the pre-tokenizer
  regex that `tokenizer.ggml.pre` names (llama.cpp's table).
- model "llama": SentencePiece BPE. Its merges are implied by the scores (the pair whose merged
  piece scores highest merges first), spaces become "▁", a "▁" is prepended unless
  `add_space_prefix` is false, and characters outside the vocabulary fall back to byte tokens.

Control tokens are matched in the text as special tokens, and BOS/EOS are added as
`add_bos_token`/`add_eos_token` say (by default: BOS for "llama", nothing for "gpt2"), as
llama.cpp's embedding tool tokenizes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from ember.weights.gguf import GGUFFile

__all__ = ["gguf_tokenizer"]

# GGUF token types (llama.cpp's llama_token_type).
_NORMAL, _CONTROL, _USER_DEFINED = 1, 3, 4

_LLAMA3 = (
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|"
    r"\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2 = _LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")
_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_DIGITS = r"\p{N}"
_PRE_TOKENIZERS: dict[str, tuple[tuple[str, ...], bool]] = {
    "gpt-2": ((_GPT2,), False),
    "mpt": ((_GPT2,), False),
    "olmo": ((_GPT2,), False),
    "jais": ((_GPT2,), False),
    "llama3": ((_LLAMA3,), True),
    "llama-v3": ((_LLAMA3,), True),
    "llama-bpe": ((_LLAMA3,), True),
    "falcon3": ((_LLAMA3,), True),
    "pixtral": ((_LLAMA3,), True),
    "qwen2": ((_QWEN2,), False),
    "deepseek-r1-qwen": ((_QWEN2,), False),
    "stablelm2": ((_QWEN2,), False),
    "smollm": ((_DIGITS, _GPT2), False),
    "starcoder": ((_DIGITS, _GPT2), False),
    "refact": ((_DIGITS, _GPT2), False),
    "command-r": ((_DIGITS, _GPT2), False),
    "codeshell": ((_DIGITS, _GPT2), False),
    "exaone": ((_DIGITS, _GPT2), False),
    "minerva-7b": ((_DIGITS, _GPT2), False),
}
"""`tokenizer.ggml.pre` -> (the regexes that split text into words, each splitting the pieces
the one before left; whether a word found whole in the vocabulary skips the merges), as
llama.cpp's llm_tokenizer_bpe sets them."""


def gguf_tokenizer(file: GGUFFile) -> Tokenizer:
    """The tokenizer the file's metadata describes.

    Raises:
        UsageError: the file carries no vocabulary, or one of a kind ember does not rebuild
            (the message names it and says to pass --tokenizer).
    """
    from . import UsageError

    meta = file.metadata
    kind = meta.get("tokenizer.ggml.model")
    if kind is None:
        raise UsageError(f"{file.path} carries no vocabulary; pass --tokenizer tokenizer.json")
    tokens = file.metadata_array("tokenizer.ggml.tokens")
    types = _array(file, "tokenizer.ggml.token_type", np.full(len(tokens), _NORMAL))
    if kind == "gpt2":
        tokenizer = _byte_level_bpe(file, tokens)
    elif kind == "llama":
        scores = _array(file, "tokenizer.ggml.scores", -np.arange(len(tokens), dtype=np.float32))
        tokenizer = _sentencepiece_bpe(file, tokens, scores, types)
    else:
        raise UsageError(
            f"{file.path} holds a {kind!r} vocabulary; ember rebuilds 'gpt2' and 'llama' "
            "ones: pass --tokenizer tokenizer.json"
        )
    _add_special_tokens(tokenizer, tokens, types)
    _add_bos_eos(tokenizer, meta, tokens, default_bos=kind == "llama")
    return tokenizer


def _array(file: GGUFFile, key: str, default: np.ndarray) -> np.ndarray:
    return np.asarray(file.metadata_array(key)) if key in file.metadata else default


def _byte_level_bpe(file: GGUFFile, tokens: list[str]) -> Tokenizer:
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    from . import UsageError

    pre = file.metadata.get("tokenizer.ggml.pre")
    if pre not in _PRE_TOKENIZERS:
        raise UsageError(
            f"{file.path}: pre-tokenizer {pre!r} is not one ember rebuilds "
            f"({', '.join(_PRE_TOKENIZERS)}); pass --tokenizer tokenizer.json"
        )
    patterns, ignore_merges = _PRE_TOKENIZERS[pre]
    merges = [tuple(m.split(" ", 1)) for m in file.metadata_array("tokenizer.ggml.merges")]
    vocab = _vocab(tokens)
    tokenizer = Tokenizer(models.BPE(vocab, merges, ignore_merges=ignore_merges))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            *(pre_tokenizers.Split(Regex(pattern), behavior="isolated") for pattern in patterns),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    return tokenizer


def _sentencepiece_bpe(
    file: GGUFFile, tokens: list[str], scores: np.ndarray, types: np.ndarray
) -> Tokenizer:
    from tokenizers import Tokenizer, models, normalizers

    vocab = _vocab(tokens)
    unknown = file.metadata.get("tokenizer.ggml.unknown_token_id")
    model = models.BPE(
        vocab,
        _merges_by_score(vocab, scores, types),
        unk_token=tokens[unknown] if isinstance(unknown, int) else None,
        fuse_unk=True,
        byte_fallback=True,
    )
    tokenizer = Tokenizer(model)
    steps = [normalizers.Replace(" ", "▁")]
    if file.metadata.get("tokenizer.ggml.add_space_prefix", True):
        steps.insert(0, normalizers.Prepend("▁"))
    tokenizer.normalizer = normalizers.Sequence(steps)
    return tokenizer


def _merges_by_score(
    vocab: dict[str, int], scores: np.ndarray, types: np.ndarray
) -> list[tuple[str, str]]:
    """Every split of a normal piece into two pieces of the vocabulary, the highest-scoring
    merged piece first: SentencePiece's BPE order as BPE merge ranks."""
    found = []
    score_of, type_of = scores.tolist(), types.tolist()  # Python numbers: a 10^5-piece loop
    for piece, i in vocab.items():
        if type_of[i] != _NORMAL:
            continue
        for cut in range(1, len(piece)):
            if piece[:cut] in vocab and piece[cut:] in vocab:
                found.append((-score_of[i], i, cut, piece))
    found.sort()
    return [(piece[:cut], piece[cut:]) for _, _, cut, piece in found]


def _vocab(tokens: list[str]) -> dict[str, int]:
    """Token -> id; a token listed twice keeps its first id, as llama.cpp's lookup does."""
    vocab: dict[str, int] = {}
    for i, token in enumerate(tokens):
        vocab.setdefault(token, i)
    return vocab


def _add_special_tokens(tokenizer: Tokenizer, tokens: list[str], types: np.ndarray) -> None:
    from tokenizers import AddedToken

    control = [tokens[i] for i in np.flatnonzero(types == _CONTROL)]
    defined = [tokens[i] for i in np.flatnonzero(types == _USER_DEFINED)]
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in control])
    tokenizer.add_tokens([AddedToken(t, normalized=False) for t in defined])


def _add_bos_eos(
    tokenizer: Tokenizer, meta: dict[str, object], tokens: list[str], default_bos: bool
) -> None:
    from tokenizers import processors

    words, specials = ["$A"], {}
    for end, default, at in (("bos", default_bos, 0), ("eos", False, 1)):
        token_id = meta.get(f"tokenizer.ggml.{end}_token_id")
        if meta.get(f"tokenizer.ggml.add_{end}_token", default) and isinstance(token_id, int):
            words.insert(at * len(words), tokens[token_id])
            specials[tokens[token_id]] = token_id
    if specials:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=" ".join(words), special_tokens=list(specials.items())
        )
