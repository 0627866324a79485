"""`print`: a host callback (`jax.debug.callback`) that hands the value's array to the
session's print options when the segment runs, inside loops and branches too."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ember.graph import Node
from ember.graph.ops.debug_print import PRINT

from .lowering import LoweringContext, lowers


@lowers(PRINT)
def _print(ctx: LoweringContext, node: Node, *value: jax.Array) -> jax.Array:
    label, text, options = node.attrs["label"], node.attrs["text"], ctx.debug_print
    if options is not None:
        if text is not None:
            jax.debug.callback(lambda: options.emit(label, text), ordered=True)
        else:
            jax.debug.callback(lambda x: options.emit(label, np.asarray(x)), value[0], ordered=True)
    return jnp.asarray(True)
