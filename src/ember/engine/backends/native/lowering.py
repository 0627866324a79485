"""The interface between the compiler and the native backend's lowerings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ember.dtype import DType
from ember.graph import Node, QuantizationEncoding

__all__ = ["Decode", "Lowering", "StepFn"]

StepFn = Callable[..., Any]
"""`fn(runtime, slot, *input_arrays)`: one array for a node of one result, else a tuple."""

Lowering = Callable[[Node, "Decode | None"], StepFn]


@dataclass(frozen=True)
class Decode:
    """A dequantize (and cast) the compiler fused into the gather before it."""

    encoding: QuantizationEncoding
    dtype: DType
