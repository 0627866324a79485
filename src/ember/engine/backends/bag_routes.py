"""Which values each device pools, for `sharded_embedding_bag_collection` on every backend:
ids checked (or clamped, or zeroed) against each whole table once, on the host, then each
device's ids made rows of its own block (or marked skipped), and each bag's count per device,
which the ids alone give (so counts never travel between devices)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ember.errors import out_of_range_error, out_of_range_ids
from ember.graph.ops.embedding_bag_collection import check_lengths

__all__ = ["SKIP", "ZERO_ROW", "BagRoutes", "PartialLayout", "route_bags"]

SKIP, ZERO_ROW = np.iinfo(np.int32).max, -1
"""A device's id for a value it does not pool (another device's row, or padding), and for an
id outside the table under "zero" (pooled, by the table's first block, as a row of zeros)."""


class PartialLayout:
    """Where each device's partials sit: `held[k]` the blocks on device `k` (input positions),
    `column[f][k]` feature `f`'s first column in device `k`'s partials (absent: no block of
    its table there), `widths[k]` the width of device `k`'s partials."""

    def __init__(self, attrs: dict, devices: int) -> None:
        shards = attrs["shards"]
        self.held = [[s for s, shard in enumerate(shards) if shard[1] == k] for k in range(devices)]
        self.column: list[dict[int, int]] = [{} for _ in attrs["features"]]
        self.widths = [0] * devices
        for f, t in enumerate(attrs["features"]):
            for table, k, _, _ in shards:
                if table == t:
                    self.column[f][k] = self.widths[k]
                    self.widths[k] += attrs["widths"][f]


@dataclass
class BagRoutes:
    """Which values each device pools, for one execute.

    `ids[k]`: int64, one per value: for a feature whose table has a block on device `k`, the
    row of that block the value reads, `ZERO_ROW`, or `SKIP`; `counts[k]`: `(features, batch)`
    how many values device `k` pools per bag; `total`: the bags' counts over every device (a
    mean's divisor, and zero for a bag that pools to zeros); `starts`: where each bag starts
    in the values, `(features * batch + 1,)`."""

    ids: list[np.ndarray]
    counts: np.ndarray
    total: np.ndarray
    starts: np.ndarray


def route_bags(attrs: dict, values: np.ndarray, lengths: np.ndarray, devices: int) -> BagRoutes:
    """Each device's ids and counts, from ids checked (or clamped, or zeroed) against each
    whole table and lengths checked as `embedding_bag_collection` checks them.

    Raises:
        ValueError: bad lengths (`embedding_bag_collection.lengths_error`).
        OutOfRangeError: under "error", the first id outside its table, by its position.
    """
    flat = values.reshape(-1)
    starts = check_lengths(lengths, flat.size)
    batch = lengths.shape[1]
    ids = [np.full(flat.size, SKIP, np.int64) for _ in range(devices)]
    counts = np.zeros((devices, len(attrs["features"]), batch), np.int64)
    for f, t in enumerate(attrs["features"]):
        low, high = int(starts[f * batch]), int(starts[(f + 1) * batch])
        raw, vocab = flat[low:high], attrs["vocab"][t]
        policy, pad = attrs["out_of_range"][t], attrs["padding_idx"][t]
        outside = out_of_range_ids(raw, vocab, "zero")
        if policy == "error" and outside is not None:
            at = low + int(outside.argmax())
            raise out_of_range_error(flat.shape, at, flat[at].item(), vocab, "error")
        if policy == "clamp":
            rows = np.clip(raw, 0, min(vocab - 1, int(np.iinfo(raw.dtype).max)))
            rows, outside = rows.astype(np.int64), None
        else:
            rows = raw.astype(np.int64)  # an unsigned id past int64 is outside: marked next
            if outside is not None:
                rows[outside] = -1
        kept = np.ones(raw.shape, bool) if pad is None else raw != pad
        first = True
        for table, k, offset, size in attrs["shards"]:
            if table != t:
                continue
            owned = kept & (rows >= offset) & (rows < offset + size)
            mine = np.where(owned, rows - offset, SKIP)
            if first and outside is not None:  # ids outside the table: the first block's zeros
                owned |= kept & outside
                mine[kept & outside] = ZERO_ROW
            first = False
            ids[k][low:high] = mine
            running = np.concatenate([[0], np.cumsum(owned)])
            bags = starts[f * batch : (f + 1) * batch + 1] - low
            counts[k, f] = running[bags[1:]] - running[bags[:-1]]
    return BagRoutes(ids, counts, counts.sum(axis=0), starts)
