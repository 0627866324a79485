"""`while_loop` as `lax.while_loop`: the predicate is traced once before the loop and again
after each body step, so that the loop's condition is a carried flag and the checks of both
blocks travel in the carry (`blocks.py`)."""

from __future__ import annotations

from typing import Any

import jax
from jax import lax

from ember.graph import Node
from ember.graph.ops.while_loop import WHILE_LOOP

from .blocks import as_types, check_rows, first_failures, no_failures, report, trace_block
from .lowering import LoweringContext, lowers


@lowers(WHILE_LOOP)
def _while_loop(ctx: LoweringContext, node: Node, *inputs: jax.Array) -> tuple:
    carried, predicate, body = node.attrs["carried"], node.attrs["predicate"], node.attrs["body"]
    seen = carried + len(predicate.captured)
    condition, captured = inputs[carried:seen], inputs[seen:]
    values = list(inputs[:carried])

    def holds(vals: list[Any]) -> tuple[Any, list]:
        [flag], checks = trace_block(ctx, predicate, [*vals, *condition])
        return flag, checks

    def step(vals: list[Any]) -> tuple[list[Any], Any, list]:
        outs, checks = trace_block(ctx, body, [*vals, *captured])
        outs = as_types(outs, values)
        flag, more = holds(outs)
        return outs, flag, checks + more

    flag, first = holds(values)
    report(ctx, first, [c.row for c in first])
    checks, shapes = check_rows(lambda: step(values)[::2])

    def next_step(carry: tuple) -> tuple:
        vals, _, kept = carry
        outs, flag, made = step(vals)
        return outs, flag, first_failures(kept, [c.row for c in made])

    final, _, rows = lax.while_loop(lambda carry: carry[1], next_step,
                                    (values, flag, no_failures(shapes)))  # fmt: skip
    report(ctx, checks, rows)
    return tuple(final)
