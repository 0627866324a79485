"""The checks shared by the ops over a vocabulary split across devices (`sharded_top_k`,
`sharded_logsumexp`): one value per device whose last axis is that device's run of the
vocabulary, in order, so that shard `d`'s column `j` is global id `offset_d + j`."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from ember.dtype import DType

from ..dim import StaticDim
from ..value import TensorValue
from .constant import as_value

__all__ = ["VocabShards", "vocab_shards"]

SHARD_DTYPES = (DType.float32, DType.bfloat16, DType.float16)
"""What the shards may hold: floats that widen exactly to float32."""


class VocabShards:
    """Checked shards: the values, their devices, and each one's run of the vocabulary."""

    def __init__(self, values: list[TensorValue]) -> None:
        self.values = values
        self.devices = [v.device for v in values]
        self.rows = tuple(int(v.shape[-1]) for v in values)
        self.offsets = tuple(itertools.accumulate(self.rows, initial=0))[:-1]
        self.size = sum(self.rows)

    @property
    def attrs(self) -> dict[str, Any]:
        return {"offsets": self.offsets, "rows": self.rows, "size": self.size}


def vocab_shards(op: str, shards: Sequence[Any]) -> VocabShards:
    """`shards` checked: at least one, each on its own device, of one float dtype, of rank 1 or
    more, with the same leading axes and a static last axis.

    Raises:
        ValueError: no shards, two on one device, a scalar, a last axis that is not static,
            leading axes that differ, or a vocabulary of no rows at all.
        TypeError: a dtype other than float32, bfloat16 or float16, or dtypes that differ.
    """
    values = [as_value(s) for s in shards]
    if not values:
        raise ValueError(f"{op}: needs at least one shard")
    devices = [v.device for v in values]
    if len(set(devices)) != len(devices):
        raise ValueError(f"{op}: each shard must be on its own device, got {devices}")
    first = values[0]
    for k, v in enumerate(values):
        if v.dtype not in SHARD_DTYPES:
            raise TypeError(
                f"{op}: shards must be one of {', '.join(repr(d) for d in SHARD_DTYPES)}, "
                f"got {v.dtype!r} (shard {k})"
            )
        if v.dtype != first.dtype:
            raise TypeError(f"{op}: shard dtypes differ: {first.dtype!r}, {v.dtype!r}")
        if v.rank == 0 or not isinstance(v.shape[-1], StaticDim):
            raise ValueError(f"{op}: shard {k} needs a static last axis, got {v.shape}")
        if list(v.shape[:-1]) != list(first.shape[:-1]):
            raise ValueError(f"{op}: shards' leading axes differ: {first.shape} and {v.shape}")
    checked = VocabShards(values)
    if checked.size == 0:
        raise ValueError(f"{op}: the shards hold no vocabulary at all")
    return checked
