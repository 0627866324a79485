"""`cond` as `lax.cond`: each branch also returns the rows of both branches' checks (the
other's as rows that report nothing), so that the checks of the branch taken travel out
(`blocks.py`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ember.graph import Node
from ember.graph.ops.cond import COND

from .blocks import as_types, check_rows, no_failures, report, trace_block
from .lowering import LoweringContext, lowers


@lowers(COND)
def _cond(ctx: LoweringContext, node: Node, flag: jax.Array, *captured: jax.Array) -> tuple:
    then, otherwise = node.attrs["then"], node.attrs["else"]
    split = len(then.captured)
    branches = [(then, captured[:split]), (otherwise, captured[split:])]
    dtypes = [jax.ShapeDtypeStruct((), t.dtype.to_numpy()) for t in node.result_types]
    if not then.outputs:  # run for the branches' effects: a token stands for the results
        dtypes = []
    found = [check_rows(lambda b=b, c=c: trace_block(ctx, b, c)) for b, c in branches]

    def run(taken: int) -> tuple:
        block, args = branches[taken]
        outs, checks = trace_block(ctx, block, args)
        rows = [no_failures(shapes) for _, shapes in found]
        rows[taken] = [c.row for c in checks]
        return as_types(outs, dtypes), rows

    outs, rows = lax.cond(flag, lambda: run(0), lambda: run(1))
    for (checks, _), branch_rows in zip(found, rows, strict=True):
        report(ctx, checks, branch_rows)
    return tuple(outs) if dtypes else (jnp.asarray(True),)
