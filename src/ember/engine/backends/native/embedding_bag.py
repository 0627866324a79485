"""Native lowering of `embedding_bag`: every argument checked before anything is written,
then the bags pooled as a collection of one feature (`BagCollection`: one kernel call that
checks the ids first; quantized rows decoded as they are read, weighted or not)."""

from __future__ import annotations

import numpy as np

from ember.errors import out_of_range_error, out_of_range_ids
from ember.graph import Node
from ember.graph.dim import StaticDim
from ember.graph.ops.embedding_bag import EMBEDDING_BAG, check_weights_shape

from .kernels.bag import POOLS, offset_bounds
from .kernels.bag_collection import BagCollection, TableSpec
from .kernels.gather import PARALLEL_MIN_BYTES
from .kernels.out_of_range import CLAMP as MODE_CLAMP
from .kernels.out_of_range import ERROR
from .kernels.out_of_range import ZERO as MODE_ZERO
from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_embedding_bag"]


@lowers(EMBEDDING_BAG)
def lower_embedding_bag(ctx: LoweringContext, node: Node) -> StepFn:
    attrs = node.attrs
    pool, padding_idx = POOLS[attrs["mode"]], attrs["padding_idx"]
    out_of_range, include_last = attrs["out_of_range"], attrs["include_last_offset"]
    has_offsets, has_weights = attrs["has_offsets"], attrs["has_weights"]
    check = out_of_range == "error"
    out_dtype = node.result_types[0].dtype.to_numpy()
    pooled_in_place = out_dtype == np.float32
    ids_dtype = node.inputs[1].dtype.to_numpy()
    encoding = attrs["encoding"]
    width = node.result_types[0].shape[1]
    static_width = int(width) if isinstance(width, StaticDim) else None
    spec = TableSpec.of(node.inputs[0].dtype.value, encoding and encoding.name)
    bags_by_width = {}  # a table of symbolic width: one per width seen

    def bags_of(width: int) -> BagCollection:
        made = bags_by_width.get(width)  # a dict look-up: ~50 ns
        if made is None:
            made = bags_by_width[width] = _bags(spec, width, pool, padding_idx, out_of_range,
                                                ids_dtype)  # fmt: skip
        return made

    static_bags = bags_of(static_width) if static_width is not None else None
    fixed_bounds: dict[tuple[int, int], np.ndarray] = {}
    """Bounds of 2-D ids' bags, by (bags, length): the same shape comes back call after call."""
    last_table: list[tuple] = [(None, None)]
    """The last contiguous table seen and its rows as the kernels read them (one tuple, read
    at once by concurrent calls): the same weight comes back every call."""

    def run(rt, slot, table, ids, *rest):
        weights = rest[-1] if has_weights else None
        flat = ids if ids.ndim == 1 else ids.reshape(-1)
        if not flat.flags.c_contiguous:
            flat = np.ascontiguousarray(flat)  # the kernels read ids by address
        if ids.ndim == 2:
            bounds = fixed_bounds.get(ids.shape)
            if bounds is None:
                bounds = np.arange(ids.shape[0] + 1, dtype=np.int64) * ids.shape[1]
                fixed_bounds.clear()  # one shape kept
                fixed_bounds[ids.shape] = bounds
        else:
            bounds = offset_bounds(rest[0] if has_offsets else None, flat.size, include_last)
        if weights is not None:
            check_weights_shape("embedding_bag", weights.shape, ids.shape)
        bags = bounds.size - 1
        if check and flat.size > bounds[bags]:  # ids after the last bag: checked all the same
            out_of_range_ids(ids, table.shape[0], "error")
        seen, tables = last_table[0]
        if seen is not table:
            tables = [spec.rows(np.ascontiguousarray(table))]  # weights are bound contiguous;
            if table.flags.c_contiguous:  # inputs may not be (a copy is made anew each call)
                last_table[0] = table, tables
        hidden = static_width if static_width is not None else table.shape[1]
        out = rt.empty(slot, (bags, hidden), out_dtype)
        pooled = out if pooled_in_place else np.empty(out.shape, np.float32)
        parallel = flat.size * hidden * 4 >= PARALLEL_MIN_BYTES
        pool = static_bags or bags_of(hidden)
        bad = pool(tables, flat, bounds, pooled, parallel, check, weights)
        if bad >= 0:
            vocab = table.shape[0]
            raise out_of_range_error(ids.shape, bad, flat[bad].item(), vocab, "error")
        if pooled is not out:
            with np.errstate(over="ignore"):  # past float16's range: inf, as IEEE and xla give
                out[...] = pooled  # rounded once, to the dtype asked for
        return out

    run.fast_step = True  # reads only `rt.empty` of its runtime
    return run


def _bags(spec, width, pool, padding_idx, out_of_range, ids_dtype) -> BagCollection:
    """A table's bags as a collection of one feature: a quantized row decoded as it is read
    (in registers, for the sums of the formats `ROWS_SUMMED` names), nothing buffered."""
    code = {"error": ERROR, "zero": MODE_ZERO, "clamp": MODE_CLAMP}[out_of_range]
    pad = -1 if padding_idx is None else padding_idx
    feature = np.array([[0, 0, pool, pad, code, 0, width]], np.int64)
    return BagCollection([spec], feature, ids_dtype)
