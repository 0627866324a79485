"""Threefry-2x32 (Salmon et al., Random123; 20 rounds, as JAX's own PRNG): a counter-based
hash that both backends evaluate with the same uint32 arithmetic, so that `ops.random` draws
the same bits on every backend. Written once over an array namespace (numpy or jax.numpy):
only `+`, `^`, `|` and shifts of uint32 arrays, which wrap in both.

>>> import numpy as np
>>> key = np.uint32(0x13198A2E), np.uint32(0x03707344)
>>> count = np.array([0x243F6A88], np.uint32), np.array([0x85A308D3], np.uint32)
>>> [hex(int(w[0])) for w in threefry2x32(*key, *count)]  # Random123's known answer
['0xc4923a9c', '0x483df7a0']
"""

from __future__ import annotations

from typing import Any

__all__ = ["random_words", "threefry2x32", "unit_interval", "unit_pair"]

_ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
_PARITY = 0x1BD11BDA


def threefry2x32(key0: Any, key1: Any, count0: Any, count1: Any) -> tuple[Any, Any]:
    """The two uint32 words of Threefry-2x32-20 of the counters `(count0, count1)` under the key
    `(key0, key1)`: uint32 arrays (or scalars) of one namespace, broadcast together."""
    keys = (key0, key1, key0 ^ key1 ^ _PARITY)
    x0, x1 = count0 + keys[0], count1 + keys[1]
    for block in range(5):
        for r in _ROTATIONS[4 * (block % 2) : 4 * (block % 2) + 4]:
            x0 = x0 + x1
            x1 = ((x1 << r) | (x1 >> (32 - r))) ^ x0
        x0 = x0 + keys[(block + 1) % 3]
        x1 = x1 + keys[(block + 2) % 3] + (block + 1)
    return x0, x1


def random_words(xp: Any, seed: Any, size: int) -> tuple[Any, Any]:
    """Two uint32 words for each of `size` positions under a uint64 `seed` (an array of one,
    of the namespace `xp`), its halves the key: the counter of position `i` is `(i, 0)`,
    which serves fewer than 2**32 positions.

    Raises:
        ValueError: `size` is 2**32 or more (the counters would repeat).
    """
    if size >= 2**32:
        raise ValueError(f"ops.random draws fewer than 2**32 values at once, asked for {size}")
    key0 = (seed[0] & 0xFFFFFFFF).astype(xp.uint32)
    key1 = (seed[0] >> 32).astype(xp.uint32)
    counters = xp.arange(size, dtype=xp.uint32)
    return threefry2x32(key0, key1, counters, xp.zeros_like(counters))


def unit_interval(xp: Any, x0: Any, x1: Any, wide: bool) -> Any:
    """float64 in `[0, 1)` from the words: 53 random bits for float64 values (`wide`), else
    24 (exact in float32, and times a 24-bit span exact in float64)."""
    if wide:
        return ((x0 >> 5).astype(xp.float64) * 2.0**26 + (x1 >> 6).astype(xp.float64)) * 2.0**-53
    return (x0 >> 8).astype(xp.float64) * 2.0**-24


def unit_pair(xp: Any, x0: Any, x1: Any, wide: bool, float_type: Any) -> tuple[Any, Any]:
    """Two uniforms of `float_type` for Box-Muller, the first in `(0, 1]` (its log is finite):
    from 32 random bits each for float64 values (`wide`), else from 24."""
    if wide:
        return (x0.astype(float_type) + 1) * 2.0**-32, x1.astype(float_type) * 2.0**-32
    return ((x0 >> 8).astype(float_type) + 1) * 2.0**-24, (x1 >> 8).astype(float_type) * 2.0**-24
