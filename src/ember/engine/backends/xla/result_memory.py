"""A result whose size the graph declares and the data checks only after it is made (under
jit, the check runs with the segment) is refused first where it cannot fit in memory."""

from __future__ import annotations

from ember.driver import CPU

__all__ = ["refuse_past_memory"]


def refuse_past_memory(op: str, out_dim: int, result_bytes: int) -> None:
    """Raises ValueError: `result_bytes` (for an `out_dim` of that size) pass the host's memory."""
    memory = CPU().max_single_alloc_size
    if result_bytes > memory:
        raise ValueError(
            f"{op}: out_dim {out_dim} asks for a result of {result_bytes} bytes, more than "
            f"this machine's memory ({memory} bytes)"
        )
