"""MAX's rotary position embeddings: `RotaryEmbedding` turns each pair of a head's values by
an angle that grows with the token's position (RoFormer), in MAX's interleaved layout (pairs
side by side) or the half-split one (Hugging Face's `rotate_half`). For long contexts,
`Llama3RotaryEmbedding` stretches the low frequencies as Llama 3.1 and later do,
`YarnRotaryEmbedding` interpolates them as YaRN does (Qwen's and gpt-oss's;
`DeepseekYarnRotaryEmbedding` as DeepSeek V2 and V3 do), and
`LongRoPERotaryEmbedding` scales each pair by its own factor (Phi-3.5). All compose ops: the
table of angles is a graph constant computed at load.

>>> from ember.dtype import DType
>>> from ember.graph import Graph, TensorType
>>> rope = RotaryEmbedding(dim=64, n_heads=4, theta=10000.0, max_seq_len=128)
>>> with Graph("g", input_types=[TensorType(DType.float32, [1, "seq", 4, 16])]) as g:
...     turned = rope(g.inputs[0])
>>> turned.shape
[Dim(1), Dim('seq'), Dim(4), Dim(16)]
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.dtype import DType
from ember.graph import DeviceRef, Dim, StaticDim, TensorValue, current_graph, ops

from .embedding import _positive
from .module import Module

__all__ = [
    "DeepseekYarnRopeScalingParams",
    "DeepseekYarnRotaryEmbedding",
    "Llama3RopeScalingParams",
    "Llama3RotaryEmbedding",
    "LongRoPERotaryEmbedding",
    "LongRoPEScalingParams",
    "RotaryEmbedding",
    "YarnRotaryEmbedding",
    "YarnScalingParams",
]


class RotaryEmbedding(Module):
    """RoPE over activations `(batch, seq_len, n_heads, head_dim)`, for positions
    `start_pos .. start_pos + seq_len` (of at most `2 * max_seq_len`). As in MAX, a subclass
    may set only `_freqs_cis` (a table of its own) and skip this constructor."""

    interleaved: bool = True
    _freqs_cis: Any = None

    def __init__(
        self,
        dim: int,
        n_heads: int,
        theta: float,
        max_seq_len: int,
        head_dim: int | None = None,
        _freqs_cis: Any = None,
        interleaved: bool = True,
    ) -> None:
        """Raises ValueError: a size that is not a positive int, an odd head dim, or a
        `theta` that is not a number above 1."""
        super().__init__()
        for name, value in (("dim", dim), ("n_heads", n_heads), ("max_seq_len", max_seq_len)):
            _positive(f"RotaryEmbedding: {name}", value)
        self.dim, self.n_heads, self.theta, self.max_seq_len = dim, n_heads, theta, max_seq_len
        self.head_dim = head_dim if head_dim is not None else dim // n_heads
        _positive("RotaryEmbedding: head_dim", self.head_dim)
        if self.head_dim % 2:
            given = f"head_dim {head_dim}" if head_dim is not None else f"{dim} // {n_heads}"
            raise ValueError(f"RotaryEmbedding: head_dim must be even, got {given}")
        if isinstance(theta, bool) or not isinstance(theta, int | float) or not theta > 1:
            raise ValueError(f"RotaryEmbedding: theta must be a number above 1, got {theta!r}")
        self.interleaved = interleaved
        self._freqs_cis = _freqs_cis

    def _compute_inv_freqs(self) -> TensorValue:
        """`theta ** (-2i / head_dim)` for each pair `i`, in float64, then float32."""
        n = self.head_dim
        iota = ops.range(0, n, 2, dtype=DType.float64, device=DeviceRef.CPU())
        return ops.cast(1.0 / (self.theta ** (iota / n)), DType.float32)

    def freqs_cis_base(self) -> TensorValue:
        """The cosine and sine of each position's angle for each pair,
        `(2 * max_seq_len, head_dim // 2, 2)` (or the `_freqs_cis` given)."""
        if self._freqs_cis is not None:
            return ops.as_value(self._freqs_cis)
        return _scaled_table(self.max_seq_len * 2, self._compute_inv_freqs())

    @property
    def freqs_cis(self) -> TensorValue:
        """`freqs_cis_base()` as `(positions, head_dim)`, made once per graph."""
        tables = self.__dict__.setdefault("_tables", weakref.WeakKeyDictionary())
        graph = current_graph()
        if graph not in tables:
            base = self.freqs_cis_base()
            if base.rank == 3:
                base = base.reshape([base.shape[0], base.shape[1] * base.shape[2]])
            tables[graph] = base
        return tables[graph]

    def compute_scale(self, user_scale: float | None = None) -> float:
        """Attention's scale: `user_scale`, or `1 / sqrt(head_dim)`."""
        return user_scale if user_scale is not None else math.sqrt(1.0 / self.head_dim)

    def __call__(self, x: Any, start_pos: Any = None, seq_len: Any = None) -> TensorValue:
        """`x` turned by the angles of positions `start_pos ..` (a dim or int, 0 by default),
        `seq_len` of them (`x.shape[-3]` by default); each execution checks that they lie
        within the table.

        Raises:
            TypeError: activations that are not floats.
            ValueError: `x`'s last dim is not the table's head dim, or static positions that
                pass the table (positions given by dims are checked at each execution, by
                the table's slice).
        """
        v = ops.as_value(x)
        if not v.dtype.is_float():
            raise TypeError(f"RotaryEmbedding: turns float activations, got {v.dtype!r}")
        freqs = self.freqs_cis
        rows, head_dim = freqs.shape
        if v.rank < 3 or v.shape[-1] != head_dim:
            raise ValueError(
                f"RotaryEmbedding: takes (batch, seq_len, n_heads, {head_dim}) activations, "
                f"got {v.shape}"
            )
        half = int(head_dim) // 2
        if self.interleaved:
            pairs = ops.as_interleaved_complex(v)
            x_re, x_im = pairs[..., 0], pairs[..., 1]
        else:
            x_re, x_im = v[..., :half], v[..., half:]
        start = Dim(0 if start_pos is None else start_pos)
        count = v.shape[-3] if seq_len is None else Dim(seq_len)
        end = start + count
        if isinstance(end, StaticDim) and int(end) > int(rows):
            raise ValueError(
                f"RotaryEmbedding: positions {start}..{int(end) - 1} pass the table's {rows} "
                "positions (max_seq_len sets them)"
            )
        table = freqs.to(v.device)[start:end]
        table = ops.cast(table.reshape([count, half, 2]), v.dtype)
        table = ops.unsqueeze(ops.unsqueeze(table, 1), 0)
        cos, sin = table[..., 0], table[..., 1]
        turned_re = x_re * cos - x_im * sin
        turned_im = x_re * sin + x_im * cos
        if self.interleaved:
            turned = ops.stack([turned_re, turned_im], axis=-1)
        else:
            turned = ops.concat([turned_re, turned_im], axis=-1)
        return ops.cast(turned.reshape(v.shape), v.dtype)


@dataclass
class Llama3RopeScalingParams:
    """Llama 3's long-context scaling: `factor` divides the low frequencies, and the band
    between `low_freq_factor` and `high_freq_factor` (of `orig_max_position`) blends."""

    factor: float
    low_freq_factor: float
    high_freq_factor: float
    orig_max_position: int


class _ScaledRotaryEmbedding(RotaryEmbedding):
    """`RotaryEmbedding` with MAX's `scaling_params` last (None: no scaling), of the
    subclass's `params_type`."""

    params_type: type = object

    def __init__(
        self,
        dim: int,
        n_heads: int,
        theta: float,
        max_seq_len: int,
        head_dim: int | None = None,
        _freqs_cis: Any = None,
        interleaved: bool = True,
        scaling_params: Any = None,
    ) -> None:
        super().__init__(dim, n_heads, theta, max_seq_len, head_dim, _freqs_cis, interleaved)
        if scaling_params is not None and not isinstance(scaling_params, self.params_type):
            raise TypeError(
                f"{type(self).__name__}: scaling_params is a {self.params_type.__name__} (or "
                f"None), got {type(scaling_params).__name__}"
            )
        self.scaling_params = scaling_params


class Llama3RotaryEmbedding(_ScaledRotaryEmbedding):
    """`RotaryEmbedding` whose frequencies are scaled as Llama 3.1 and later scale them
    (`scaling_params`: a `Llama3RopeScalingParams`)."""

    params_type = Llama3RopeScalingParams

    def _compute_inv_freqs(self) -> TensorValue:
        inv_freqs = super()._compute_inv_freqs()
        params = self.scaling_params
        if params is None:
            return inv_freqs
        low_wavelen = params.orig_max_position / params.low_freq_factor
        high_wavelen = params.orig_max_position / params.high_freq_factor
        wavelen = 2 * math.pi / inv_freqs
        if params.low_freq_factor != params.high_freq_factor:
            smooth = (params.orig_max_position / wavelen - params.low_freq_factor) / (
                params.high_freq_factor - params.low_freq_factor
            )
        else:
            smooth = ops.constant(0, DType.float32, device=DeviceRef.CPU())
        blended = (1 - smooth) * inv_freqs / params.factor + smooth * inv_freqs
        low = ops.where(wavelen > low_wavelen, inv_freqs / params.factor, blended)
        return ops.where(wavelen < high_wavelen, inv_freqs, low)


@dataclass
class YarnScalingParams:
    """YaRN's scaling: frequencies of fewer than `beta_slow` turns over
    `original_max_position_embeddings` positions are divided by `factor`, those of more than
    `beta_fast` kept, the band between blended; `truncate` rounds the band's ends to whole
    pairs (as Hugging Face's `truncate`)."""

    factor: float
    beta_fast: float
    beta_slow: float
    original_max_position_embeddings: int
    truncate: bool = True


class YarnRotaryEmbedding(_ScaledRotaryEmbedding):
    """`RotaryEmbedding` with YaRN's frequencies (`scaling_params`: a `YarnScalingParams`),
    and its cosines and sines scaled by `0.1 * ln(factor) + 1` (the attention temperature YaRN
    folds into them); with `scaling_params` the table holds `max_seq_len` positions, as
    MAX's does (without, it is `RotaryEmbedding`'s)."""

    params_type = YarnScalingParams

    def freqs_cis_base(self) -> TensorValue:
        params = self.scaling_params
        if self._freqs_cis is not None or params is None:
            return super().freqs_cis_base()
        inv_freqs = _yarn_inv_freqs(
            self.head_dim,
            self.theta,
            params.factor,
            (params.beta_fast, params.beta_slow),
            params.original_max_position_embeddings,
            params.truncate,
        )
        return _scaled_table(self.max_seq_len, inv_freqs, _yarn_mscale(params.factor))


@dataclass
class DeepseekYarnRopeScalingParams:
    """DeepSeek's YaRN: `scaling_factor`, the band's `beta_fast` and `beta_slow` turns over
    `original_max_position_embeddings`, and the temperatures `mscale` and `mscale_all_dim`."""

    scaling_factor: float
    original_max_position_embeddings: int
    beta_fast: int
    beta_slow: int
    mscale: float
    mscale_all_dim: float


class DeepseekYarnRotaryEmbedding(_ScaledRotaryEmbedding):
    """DeepSeek V2 / V3's YaRN over `dim` rope values per head (MAX's `dim` here is the rope
    dim, not the model's): cosines and sines scaled by the ratio of the two temperatures,
    `compute_scale` by the square of `mscale`'s; `max_seq_len` positions.

    Raises:
        ValueError (at the first call): no `scaling_params`.
    """

    params_type = DeepseekYarnRopeScalingParams

    def freqs_cis_base(self) -> TensorValue:
        params = self.scaling_params
        if self._freqs_cis is not None:
            return super().freqs_cis_base()
        if params is None:
            raise ValueError("DeepseekYarnRotaryEmbedding: scaling_params must be provided")
        inv_freqs = _yarn_inv_freqs(
            self.dim,
            self.theta,
            params.scaling_factor,
            (params.beta_fast, params.beta_slow),
            params.original_max_position_embeddings,
            True,
        )
        ratio = _yarn_mscale(params.scaling_factor, params.mscale) / _yarn_mscale(
            params.scaling_factor, params.mscale_all_dim
        )
        return _scaled_table(self.max_seq_len, inv_freqs, ratio)

    def compute_scale(self, user_scale: float | None = None) -> float:
        scale = super().compute_scale(user_scale)
        params = self.scaling_params
        if params is None:
            return scale
        return scale * _yarn_mscale(params.scaling_factor, params.mscale) ** 2


def _yarn_mscale(factor: float, mscale: float = 1.0) -> float:
    """YaRN's attention temperature for a context grown `factor` times."""
    return 0.1 * mscale * math.log(factor) + 1.0 if factor > 1 else 1.0


def _yarn_inv_freqs(
    n: int,
    theta: float,
    factor: float,
    band: tuple[float, float],
    original: int,
    truncate: bool,
) -> TensorValue:
    """YaRN's frequency of each of `n // 2` pairs: the plain one for pairs that turn more than
    `band[0]` times over the `original` positions, divided by `factor` for those that turn
    fewer than `band[1]`, blended linearly across the pairs between (rounded outward to whole
    pairs where `truncate`)."""
    cpu = DeviceRef.CPU()
    powers = theta ** (ops.range(0, n, 2, dtype=DType.float64, device=cpu) / n)
    kept = ops.cast(1.0 / powers, DType.float32)
    divided = ops.cast(1.0 / (factor * powers), DType.float32)

    def pair_of(turns: float) -> float:
        """The pair whose frequency turns `turns` times over the original positions."""
        return n * math.log(original / (turns * 2 * math.pi)) / (2 * math.log(theta))

    low, high = pair_of(band[0]), pair_of(band[1])
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, n - 1)
    width = high - low if high != low else 0.001
    pairs = ops.range(0, n // 2, 1, dtype=DType.float32, device=cpu)
    ramp = ops.min(ops.max((pairs - low) / width, 0.0), 1.0)  # 0 fast .. 1 slow
    return divided * ramp + kept * (1 - ramp)


def _scaled_table(positions: int, inv_freqs: TensorValue, scale: float = 1.0) -> TensorValue:
    """The cosines and sines of `positions` positions' angles (times `scale`, unless 1),
    `(positions, pairs, 2)`."""
    counted = ops.range(0, positions, 1, dtype=DType.float32, device=DeviceRef.CPU())
    angles = ops.outer(counted, inv_freqs)
    cos, sin = ops.cos(angles), ops.sin(angles)
    if scale != 1.0:
        cos, sin = cos * scale, sin * scale
    return ops.stack([cos, sin], axis=-1)


@dataclass
class LongRoPEScalingParams:
    """LongRoPE's per-pair factors: `short_factor` for positions below `original_max_position`,
    `long_factor` from there on (one factor per pair), for a context of
    `max_position_embeddings`."""

    short_factor: list[float]
    long_factor: list[float]
    original_max_position: int
    max_position_embeddings: int


class LongRoPERotaryEmbedding(_ScaledRotaryEmbedding):
    """`RotaryEmbedding` whose pair `i` turns at its frequency divided by a factor of its own
    (`scaling_params`: a `LongRoPEScalingParams`): the table is stitched from the short
    factors' positions and the long factors' after them, as MAX stitches it; `compute_scale`
    adds LongRoPE's attention factor."""

    params_type = LongRoPEScalingParams

    def freqs_cis_base(self) -> TensorValue:
        params = self.scaling_params
        if self._freqs_cis is not None or params is None:
            return super().freqs_cis_base()
        cpu, split, end = DeviceRef.CPU(), params.original_max_position, self.max_seq_len * 2
        if not 0 < split < end:
            raise ValueError(
                f"LongRoPERotaryEmbedding: original_max_position {split} must lie inside the "
                f"table's {end} positions"
            )
        runs, inv_freqs = [], self._compute_inv_freqs()
        for factors, (start, stop) in ((params.short_factor, (0, split)),
                                       (params.long_factor, (split, end))):  # fmt: skip
            positions = ops.range(start, stop, 1, dtype=DType.float32, device=cpu)
            runs.append(ops.outer(positions, inv_freqs / self._factors(factors)))
        angles = ops.concat(runs, axis=0)
        return ops.stack([ops.cos(angles), ops.sin(angles)], axis=-1)

    def _factors(self, factors: list[float]) -> TensorValue:
        """One factor per pair, as a float32 constant.

        Raises:
            ValueError: fewer factors than pairs.
        """
        pairs = self.head_dim // 2
        if len(factors) < pairs:
            raise ValueError(
                f"LongRoPERotaryEmbedding: {len(factors)} factors for {pairs} pairs; give one "
                "factor per pair"
            )
        return ops.constant(np.asarray(factors[:pairs], np.float32), DType.float32)

    def compute_scale(self, user_scale: float | None = None) -> float:
        """`RotaryEmbedding`'s scale times `sqrt(1 + ln(s) / ln(original))`, where the context
        grew `s` times (`s` above 1)."""
        scale = super().compute_scale(user_scale)
        params = self.scaling_params
        if user_scale is not None or params is None:
            return scale
        grown = params.max_position_embeddings / params.original_max_position
        if grown <= 1:
            return scale
        return scale * math.sqrt(1 + math.log(grown) / math.log(params.original_max_position))
