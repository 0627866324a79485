"""A block (`ember.graph.block`) traced inside its loop's or branch's lowering, and the
out-of-range checks of the ops in it carried out of `lax.while_loop` / `lax.cond` as rows
(the first failing row of each check kept), so that they raise after the segment runs, as
checks outside blocks do."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ember.graph import Node
from ember.graph.block import Block
from ember.graph.graph import INPUT
from ember.graph.ops.constant import CONSTANT

from .executable import lower_node
from .lowering import Check, LoweringContext, Requirement

__all__ = ["as_types", "check_rows", "first_failures", "no_failures", "report", "trace_block"]


def trace_block(
    ctx: LoweringContext, block: Block, args: Sequence[Any]
) -> tuple[list[Any], list[Check | Requirement]]:
    """The block's outputs for its arguments and captured values (in its inputs' order), and
    the checks its ops made.

    Raises:
        NotImplementedError: the block moves a value between devices.
    """
    inner = LoweringContext(ctx.bindings, ctx.device, debug_print=ctx.debug_print)
    env: dict[int, Any] = {}
    for node in block.live_nodes():
        if node.op is INPUT:
            env[id(node.results[0])] = args[node.attrs["index"]]
        elif node.op is CONSTANT:
            env[id(node.results[0])] = jnp.asarray(node.attrs["value"])
        elif node.op.cross_device:
            raise NotImplementedError(
                f"{node.op} inside a loop or branch: the xla backend runs a block on one "
                "device (move values before the loop, or use the native backend)"
            )
        else:
            for v, result in zip(node.results, _lowered(inner, node, env), strict=True):
                env[id(v)] = result
    return [env[id(v)] for v in block.outputs], inner.checks


def _lowered(ctx: LoweringContext, node: Node, env: dict[int, Any]) -> tuple:
    return lower_node(ctx, node, [env[id(v)] for v in node.inputs])


def check_rows(
    fn: Callable[[], tuple[Any, list[Check | Requirement]]],
) -> tuple[list[Check | Requirement], list[jax.ShapeDtypeStruct]]:
    """The checks ``fn`` makes and their rows' shapes, found by tracing it without running
    it (a loop's carry must be laid out before the loop is traced)."""
    made: list[Check | Requirement] = []

    def rows() -> list[Any]:
        _, checks = fn()
        made[:] = checks
        return [c.row for c in checks]

    shapes = jax.eval_shape(rows)
    return list(made), shapes


def no_failures(shapes: Sequence[jax.ShapeDtypeStruct]) -> list[jax.Array]:
    """Rows that report nothing (a row reports a failure where its first entry is >= 0)."""
    return [jnp.full(s.shape, -1, s.dtype) for s in shapes]


def first_failures(kept: Sequence[Any], rows: Sequence[Any]) -> list[Any]:
    """Each check's row: the one kept if it already failed, else the new one."""
    return [jnp.where(old[0] >= 0, old, new) for old, new in zip(kept, rows, strict=True)]


def report(ctx: LoweringContext, checks: Sequence[Check | Requirement], rows: Sequence) -> None:
    """Hand the block's checks, with their final rows, to the segment's context."""
    ctx.checks.extend(dataclasses.replace(c, row=r) for c, r in zip(checks, rows, strict=True))


def as_types(values: Sequence[Any], like: Sequence[Any]) -> list[Any]:
    """``values`` in the dtypes of ``like`` (a loop's carry keeps its types exactly)."""
    return [
        v if v.dtype == t.dtype else jax.lax.convert_element_type(v, t.dtype)
        for v, t in zip(values, like, strict=True)
    ]
