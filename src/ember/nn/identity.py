"""`Identity` (MAX's): a layer that returns its input, for a slot a model leaves empty (a
norm that a draft model's inputs have already had)."""

from __future__ import annotations

from typing import Any

from .module import Module

__all__ = ["Identity"]


class Identity(Module):
    """``Identity()(x) is x``."""

    def __call__(self, x: Any) -> Any:
        return x
