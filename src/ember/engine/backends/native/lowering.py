"""How the native backend lowers ops: each op file registers one lowering against the op's
symbol with `@lowers(SYMBOL)`; a lowering turns a node, in its context, into a step function
over arrays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.dtype import DType
from ember.engine.debug_print import DebugPrintOptions
from ember.graph import Node, Op, QuantizationEncoding

__all__ = ["LOWERINGS", "TOKEN", "Decode", "Lowering", "LoweringContext", "StepFn", "lowers"]

StepFn = Callable[..., Any]
"""`fn(runtime, slot, *input_arrays)`: one array for a node of one result, else a tuple."""

Lowering = Callable[["LoweringContext", Node], StepFn]

TOKEN = np.array(True)
"""What a step that runs only for its effect returns (a print; a branch or subgraph of
prints), for its node's token."""

LOWERINGS: dict[Op, Lowering] = {}


def lowers(*ops: Op) -> Callable[[Lowering], Lowering]:
    """Register the decorated function as the native lowering of `ops`."""

    def register(lowering: Lowering) -> Lowering:
        for op in ops:
            if op in LOWERINGS:
                raise ValueError(f"the native backend already lowers {op}")
            LOWERINGS[op] = lowering
        return lowering

    return register


@dataclass(frozen=True)
class Decode:
    """A dequantize (and cast) the plan fused into the gather before it."""

    encoding: QuantizationEncoding
    dtype: DType


@dataclass(frozen=True)
class LoweringContext:
    """What the plan tells a lowering beyond its node: only a lookup reads `decode`."""

    decode: Decode | None = None
    """The dequantize (and cast) fused into this lookup, or None."""
    debug_print: DebugPrintOptions | None = None
    """The session's `ops.print` options (read when a print runs), or None."""
