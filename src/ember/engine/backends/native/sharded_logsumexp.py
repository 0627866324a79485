"""Native lowering of `sharded_logsumexp`: each shard's `(max, sum of exp(x - max))` per token,
combined in shard order as Megatron's vocabulary-parallel cross-entropy does. CPU devices share
memory: the pairs are read where they lie, and every device gets a read-only view of one
result."""

from __future__ import annotations

import math

import numpy as np

from ember.graph import Node
from ember.graph.ops.sharded_logsumexp import SHARDED_LOGSUMEXP

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["combine_partials", "lower_sharded_logsumexp", "partial_logsumexp"]


@lowers(SHARDED_LOGSUMEXP)
def lower_sharded_logsumexp(ctx: LoweringContext, node: Node) -> StepFn:
    def run(rt, slot, *shards):
        lead = shards[0].shape[:-1]
        pairs = [partial_logsumexp(s.reshape(math.prod(lead), s.shape[-1])) for s in shards]
        peaks, sums = np.stack([p for p, _ in pairs]), np.stack([s for _, s in pairs])
        total = combine_partials(peaks, sums).reshape(*lead, 1)
        if len(shards) == 1:
            return total
        total.flags.writeable = False  # one buffer: no device's result may change another's
        return tuple(total.view() for _ in shards)

    return run


def partial_logsumexp(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's largest value `m` (-inf for no columns, NaN where one is NaN) and
    `sum(exp(x - m))` in float32, shifted by 0 where `m` is not finite (no inf - inf)."""
    rows = rows.astype(np.float32, copy=False)
    if rows.shape[1] == 0:
        empty = np.full(rows.shape[0], -np.inf, np.float32)
        return empty, np.zeros(rows.shape[0], np.float32)
    peak = np.max(rows, axis=1)
    shift = np.where(np.isfinite(peak), peak, np.float32(0))
    with np.errstate(over="ignore", invalid="ignore"):
        return peak, np.sum(np.exp(rows - shift[:, None]), axis=1, dtype=np.float32)


def combine_partials(peaks: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """`M + log(sum_d s_d exp(m_d - M))` over the first axis, `M` the largest peak where it is
    finite (else 0), in float32. A shard whose peak is not finite is scaled by 1: its sum is
    0 (all -inf), inf or NaN as it stands (never `0 * exp(-M)`, which overflows to NaN)."""
    top = np.max(peaks, axis=0)
    shift = np.where(np.isfinite(top), top, np.float32(0))
    shifts = np.where(np.isfinite(peaks), peaks, shift)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        scaled = sums * np.exp(shifts - shift)
        total = scaled[0].copy()
        for part in scaled[1:]:  # in shard order: every device, every backend, the same sum
            total += part
        return (np.log(total) + shift).astype(np.float32)
