"""What a plan's steps see while one `execute` runs: dim bindings and where results go."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .buffer_pool import BufferPool

__all__ = ["Runtime"]


@dataclass
class Runtime:
    pool: BufferPool
    bindings: dict[str, int] = field(default_factory=dict)
    targets: dict[int, np.ndarray] | None = None
    """Caller-given `out=` arrays by the slot whose value they receive."""

    def empty(self, slot: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Where the value of `slot` goes: the caller's `out=` array, or a pooled buffer.

        Raises:
            ValueError: the caller's array has another shape, dtype or layout.
        """
        if self.targets is not None and slot in self.targets:
            target = self.targets[slot]
            if target.shape != tuple(shape) or target.dtype != dtype:
                raise ValueError(
                    f"out= array has shape {target.shape} and dtype {target.dtype}; "
                    f"the result has shape {tuple(shape)} and dtype {dtype}"
                )
            if target.flags.c_contiguous:
                return target  # a strided one gets a pooled buffer, copied into it at the end
        return self.pool.empty(tuple(shape), dtype)
