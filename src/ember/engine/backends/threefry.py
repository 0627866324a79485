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

__all__ = ["random_words", "threefry2x32"]

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


def random_words(xp: Any, key0: Any, key1: Any, size: int) -> tuple[Any, Any]:
    """Two uint32 words for each of `size` positions under the key `(key0, key1)` (uint32
    scalars of the namespace `xp`): the counter of position `i` is `(i, 0)`, which serves
    fewer than 2**32 positions.

    Raises:
        ValueError: `size` is 2**32 or more (the counters would repeat).
    """
    if size >= 2**32:
        raise ValueError(f"ops.random draws fewer than 2**32 values at once, asked for {size}")
    counters = xp.arange(size, dtype=xp.uint32)
    return threefry2x32(key0, key1, counters, counters * xp.uint32(0))
