"""MAX's rotary position embeddings on every backend, against a float64 numpy RoPE written
from the formula (RoFormer; Hugging Face's `rotate_half` for the half-split layout; Llama 3's
and YaRN's frequency scaling as `transformers` computes them): both layouts, positions from a
dim an input binds, bfloat16 activations, a table reused by two graphs, and positions past
the table."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.graph import Graph, TensorType


def _inv_freqs(head_dim: int, theta: float) -> np.ndarray:
    return 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)


def _llama3(inv: np.ndarray, factor, low, high, original) -> np.ndarray:
    wavelen = 2 * math.pi / inv
    scaled = np.where(wavelen > original / low, inv / factor, inv)
    smooth = (original / wavelen - low) / (high - low)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= original / high) & (wavelen <= original / low)
    return np.where(medium, blended, scaled)


def _rope(x: np.ndarray, start: int, inv: np.ndarray, interleaved: bool) -> np.ndarray:
    d = x.shape[-1]
    angles = np.outer(np.arange(start, start + x.shape[1]), inv)[None, :, None, :]
    cos, sin, x = np.cos(angles), np.sin(angles), x.astype(np.float64)
    re, im = (x[..., 0::2], x[..., 1::2]) if interleaved else (x[..., : d // 2], x[..., d // 2 :])
    turned = (re * cos - im * sin, re * sin + im * cos)
    if interleaved:
        return np.stack(turned, -1).reshape(x.shape)
    return np.concatenate(turned, -1)


@pytest.mark.parametrize("interleaved", [True, False])
def test_against_the_formula_from_position_zero_and_from_a_bound_dim(session, interleaved):
    rope = nn.RotaryEmbedding(64, 4, 10000.0, 64, interleaved=interleaved)
    types = [TensorType(DType.float32, [2, "seq", 4, 16]), TensorType(DType.int32, ["past"])]
    with Graph("rope", input_types=types) as g:
        x, past = g.inputs
        g.output(rope(x), rope(x, start_pos=past.shape[0]))
    model = session.load(g)
    rng = np.random.default_rng(0)
    inv = _inv_freqs(16, 10000.0).astype(np.float32)
    for seq, past in ((5, 7), (1, 100), (3, 0)):
        x = rng.standard_normal((2, seq, 4, 16)).astype(np.float32)
        first, later = (t.to_numpy() for t in model.execute(x, np.zeros(past, np.int32)))
        assert first.dtype == np.float32 and first.shape == x.shape
        bound = 1e-6 * (1 + past)  # float32 angles: positions times frequencies, rounded
        np.testing.assert_allclose(first, _rope(x, 0, inv, interleaved), atol=1e-6)
        np.testing.assert_allclose(later, _rope(x, past, inv, interleaved), atol=bound)


def test_bfloat16_activations_stay_bfloat16(session):
    rope = nn.RotaryEmbedding(32, 2, 10000.0, 16)
    with Graph("bf16", input_types=[TensorType(DType.bfloat16, [1, 4, 2, 16])]) as g:
        g.output(rope(g.inputs[0]))
    x = np.random.default_rng(1).standard_normal((1, 4, 2, 16)).astype(ml_dtypes.bfloat16)
    got = session.load(g).execute(x)[0].to_numpy()
    assert got.dtype == ml_dtypes.bfloat16
    want = _rope(x.astype(np.float32), 0, _inv_freqs(16, 10000.0), True)
    np.testing.assert_allclose(got.astype(np.float32), want, atol=0.05)


def test_llama3_frequency_scaling(session):
    params = nn.Llama3RopeScalingParams(8.0, 1.0, 4.0, 8192)
    rope = nn.Llama3RotaryEmbedding(2048, 32, 500000.0, 256, interleaved=False,
                                    scaling_params=params)  # fmt: skip
    with Graph("llama3", input_types=[TensorType(DType.float32, [1, "seq", 2, 64])]) as g:
        g.output(rope(g.inputs[0], start_pos=200))
    x = np.random.default_rng(2).standard_normal((1, 9, 2, 64)).astype(np.float32)
    got = session.load(g).execute(x)[0].to_numpy()
    inv = _llama3(_inv_freqs(64, 500000.0), 8.0, 1.0, 4.0, 8192)
    assert not np.allclose(inv, _inv_freqs(64, 500000.0))  # the scaling changes some
    np.testing.assert_allclose(got, _rope(x, 200, inv, False), atol=3e-4)


def _yarn(head_dim, theta, factor, beta_fast, beta_slow, original, truncate):
    """YaRN's frequencies and attention scale, as its paper and Hugging Face compute them."""
    powers = theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)

    def pair_of(turns):
        return head_dim * math.log(original / (turns * 2 * math.pi)) / (2 * math.log(theta))

    low, high = pair_of(beta_fast), pair_of(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, head_dim - 1)
    ramp = np.clip((np.arange(head_dim // 2) - low) / ((high - low) or 0.001), 0, 1)
    return (1 - ramp) / powers + ramp / (factor * powers), 0.1 * math.log(factor) + 1


@pytest.mark.parametrize("truncate", [True, False])
def test_yarn_frequencies_and_scale(session, truncate):
    params = nn.YarnScalingParams(4.0, 32.0, 1.0, 4096, truncate)
    rope = nn.YarnRotaryEmbedding(1024, 8, 1e6, 256, interleaved=False, scaling_params=params)
    with Graph("yarn", input_types=[TensorType(DType.float32, [1, "seq", 2, 128])]) as g:
        g.output(rope(g.inputs[0], start_pos=100))
    x = np.random.default_rng(3).standard_normal((1, 7, 2, 128)).astype(np.float32)
    inv, scale = _yarn(128, 1e6, 4.0, 32.0, 1.0, 4096, truncate)
    got = session.load(g).execute(x)[0].to_numpy()
    np.testing.assert_allclose(got, scale * _rope(x, 100, inv, False), atol=1e-4)


def test_deepseek_yarn_over_the_rope_dim_with_its_two_temperatures(session):
    params = nn.DeepseekYarnRopeScalingParams(40.0, 4096, 32, 1, 0.707, 1.0)
    rope = nn.DeepseekYarnRotaryEmbedding(64, 1, 10000.0, 128, interleaved=True,
                                          scaling_params=params)  # fmt: skip
    with Graph("deepseek", input_types=[TensorType(DType.float32, [1, "seq", 2, 64])]) as g:
        g.output(rope(g.inputs[0], start_pos=50))
    x = np.random.default_rng(6).standard_normal((1, 5, 2, 64)).astype(np.float32)
    inv, _ = _yarn(64, 10000.0, 40.0, 32, 1, 4096, True)
    temperature = lambda m: 0.1 * m * math.log(40.0) + 1  # noqa: E731
    got = session.load(g).execute(x)[0].to_numpy()
    want = temperature(0.707) / temperature(1.0) * _rope(x, 50, inv, True)
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert rope.compute_scale() == pytest.approx(math.sqrt(1 / 64) * temperature(0.707) ** 2)


def test_longrope_per_pair_factors_stitched_at_the_original_length(session):
    rng = np.random.default_rng(5)
    short, long = list(rng.uniform(1, 1.5, 8)), list(rng.uniform(1, 20, 8))
    params = nn.LongRoPEScalingParams(short, long, 16, 128)
    rope = nn.LongRoPERotaryEmbedding(32, 2, 10000.0, 32, interleaved=False,
                                      scaling_params=params)  # fmt: skip
    types = [TensorType(DType.float32, [1, "seq", 2, 16]), TensorType(DType.int8, ["past"])]
    with Graph("longrope", input_types=types) as g:
        x, past = g.inputs
        g.output(rope(x, past.shape[0]))
    model = session.load(g)
    x = rng.standard_normal((1, 6, 2, 16)).astype(np.float32)
    inv = _inv_freqs(16, 10000.0)
    for start in (0, 13, 40):  # before, across and after the stitch at 16
        got = model.execute(x, np.zeros(start, np.int8))[0].to_numpy()
        positions = np.arange(start, start + 6)
        factors = np.where(positions[:, None] < 16, [short], [long])
        want = np.concatenate(
            [
                _rope(x[:, i : i + 1], p, inv / f, False)
                for i, (p, f) in enumerate(zip(positions, factors, strict=True))
            ],
            axis=1,
        )
        np.testing.assert_allclose(got, want, atol=1e-5)  # float32 angles, positions to 45
    assert rope.compute_scale() == pytest.approx(
        math.sqrt(1 / 16 * (1 + math.log(8) / math.log(16)))
    )
    few = nn.LongRoPEScalingParams([1.0], [1.0], 16, 128)
    with (
        Graph("few", input_types=[TensorType(DType.float32, [1, 2, 2, 16])]) as g,
        pytest.raises(ValueError, match="1 factors for 8 pairs; give one factor per pair"),
    ):
        nn.LongRoPERotaryEmbedding(32, 2, 1e4, 32, scaling_params=few)(g.inputs[0])


def test_one_layer_in_two_graphs_and_positions_past_the_table(session):
    rope = nn.RotaryEmbedding(16, 2, 10000.0, 4)  # a table of 8 positions
    types = [TensorType(DType.float32, [1, "seq", 2, 8]), TensorType(DType.int32, ["past"])]
    for name in ("first", "second"):
        with Graph(name, input_types=types) as g:
            x, past = g.inputs
            g.output(rope(x, start_pos=past.shape[0]))
        model = session.load(g)
        x = np.ones((1, 3, 2, 8), np.float32)
        np.testing.assert_allclose(
            model.execute(x, np.zeros(5, np.int32))[0].to_numpy(),
            _rope(x, 5, _inv_freqs(8, 10000.0), True),
            atol=1e-5,
        )
        with pytest.raises(ValueError, match=r"is \[6:9\] at this execution"):
            model.execute(x, np.zeros(6, np.int32))
    assert rope.compute_scale() == math.sqrt(1 / 8) and rope.compute_scale(0.5) == 0.5


def test_a_subclass_with_a_table_of_its_own_as_max_s_tests_write_one(session):
    """MAX's tests give a canned table by setting `_freqs_cis` alone, skipping the
    constructor; static positions past the table are refused by name."""
    inv = _inv_freqs(8, 10000.0)
    angles = np.outer(np.arange(6), inv).astype(np.float32)
    canned = np.stack([np.cos(angles), np.sin(angles)], -1).astype(np.float32)

    class Canned(nn.RotaryEmbedding):
        def __init__(self, table):
            self._freqs_cis = table

    rope = Canned(canned)
    with Graph("canned", input_types=[TensorType(DType.float32, [1, 4, 2, 8])]) as g:
        with pytest.raises(ValueError, match=r"positions 3..6 pass the table's 6 positions"):
            rope(g.inputs[0], 3)
        g.output(rope(g.inputs[0], 2))
    x = np.random.default_rng(4).standard_normal((1, 4, 2, 8)).astype(np.float32)
    got = session.load(g).execute(x)[0].to_numpy()
    np.testing.assert_allclose(got, _rope(x, 2, inv, True), atol=1e-5)


def test_bad_declarations_and_inputs():
    with pytest.raises(ValueError, match="head_dim must be even, got 30 // 2"):
        nn.RotaryEmbedding(30, 2, 10000.0, 8)
    with pytest.raises(TypeError, match="scaling_params is a YarnScalingParams"):
        nn.YarnRotaryEmbedding(32, 2, 1e4, 8, scaling_params={"factor": 4.0})
    with pytest.raises(ValueError, match="theta must be a number above 1"):
        nn.RotaryEmbedding(32, 2, 1, 8)
    with pytest.raises(ValueError, match="n_heads must be a positive int"):
        nn.RotaryEmbedding(32, 0, 10000.0, 8)
    rope = nn.RotaryEmbedding(32, 2, 10000.0, 8)
    with (
        Graph("ints", input_types=[TensorType(DType.int32, [1, 2, 2, 16])]) as g,
        pytest.raises(TypeError, match="turns float activations, got int32"),
    ):
        rope(g.inputs[0])  # a float table cast to ints would turn by nothing
    with (
        Graph("bad", input_types=[TensorType(DType.float32, [1, 3, 2, 8])]) as g,
        pytest.raises(ValueError, match=r"takes \(batch, seq_len, n_heads, 16\)"),
    ):
        rope(g.inputs[0])
