"""Native lowerings of `scatter` and `scatter_nd`: indices checked and wrapped as `gather`'s,
then a plain scatter writes each target once, with its last update (numpy leaves repeated
targets of one assignment to chance), and the combining forms are numpy's unbuffered
`ufunc.at`, in the updates' order."""

from __future__ import annotations

import numpy as np

from ember.errors import out_of_range_ids
from ember.graph import Node
from ember.graph.ops.scatter import SCATTER, SCATTER_ND

from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_scatter", "lower_scatter_nd"]

_COMBINE = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


@lowers(SCATTER)
def lower_scatter(ctx: LoweringContext, node: Node) -> StepFn:
    axis, reduction = node.attrs["axis"], node.attrs["reduction"]

    def run(rt, slot, x, updates, indices):
        for d, (size, limit) in enumerate(zip(updates.shape, x.shape, strict=True)):
            if d != axis and size > limit:
                raise ValueError(
                    f"scatter: updates {updates.shape} reach past {x.shape} in dim {d}"
                )
        out = x.copy()
        if updates.size == 0:
            return out
        out_of_range_ids(indices, x.shape[axis], "wrap", axis)
        coords = list(np.indices(updates.shape, sparse=True))
        coords[axis] = np.where(indices < 0, indices + x.shape[axis], indices)
        target = tuple(np.broadcast_arrays(*coords))
        if reduction is not None:
            _COMBINE[reduction].at(out, target, updates)
            return out
        flat = np.ravel_multi_index(target, x.shape).ravel()
        last = _last_of_each(flat)
        out.reshape(-1)[flat[last]] = updates.reshape(-1)[last]
        return out

    return run


@lowers(SCATTER_ND)
def lower_scatter_nd(ctx: LoweringContext, node: Node) -> StepFn:
    reduction = node.attrs["reduction"]

    def run(rt, slot, x, updates, indices):
        out = x.copy()
        depth = indices.shape[-1]
        if updates.size == 0:
            return out
        components = []
        for j in range(depth):
            component = indices[..., j]
            out_of_range_ids(component, x.shape[j], "wrap", j)
            components.append(np.where(component < 0, component + x.shape[j], component))
        if reduction is not None:
            _COMBINE[reduction].at(out, tuple(components), updates)
            return out
        flat = np.ravel_multi_index(tuple(components), x.shape[:depth]).ravel()
        last = _last_of_each(flat)
        slices = out.reshape(-1, *x.shape[depth:])
        slices[flat[last]] = updates.reshape(-1, *x.shape[depth:])[last]
        return out

    return run


def _last_of_each(targets: np.ndarray) -> np.ndarray:
    """The positions of `targets` that are the last to name their target."""
    _, first_from_end = np.unique(targets[::-1], return_index=True)
    return len(targets) - 1 - first_from_end
