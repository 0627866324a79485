"""`call`: the subgraph traced in place (`blocks.py`), its checks the segment's."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.ops.call import CALL

from .blocks import report, trace_block
from .lowering import LoweringContext, lowers


@lowers(CALL)
def _call(ctx: LoweringContext, node: Node, *inputs: jax.Array) -> tuple:
    outs, checks = trace_block(ctx, node.attrs["graph"], inputs)
    report(ctx, checks, [c.row for c in checks])
    return tuple(outs) if outs else (jnp.asarray(True),)  # no outputs: the effect's token
