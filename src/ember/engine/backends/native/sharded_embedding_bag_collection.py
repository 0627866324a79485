"""Native lowering of `sharded_embedding_bag_collection`: the ids routed once on the host
(`bag_routes`), then each device's blocks pooled into its partials by the collection's own
kernels (`kernels.bag_collection`: one call per device and row kind; a skipped value is the
kernel's padding id), and the partials combined on the host. CPU devices share memory, so the
partials are read where they lie, and every device gets a read-only view of one result."""

from __future__ import annotations

import numpy as np

from ember.graph import Node
from ember.graph.ops.embedding_bag import check_weights_shape
from ember.graph.ops.sharded_embedding_bag_collection import SHARDED_EMBEDDING_BAG_COLLECTION

from ..bag_routes import SKIP, PartialLayout, route_bags
from .kernels.bag import POOL_MAX, POOL_SUM, column_maxima
from .kernels.bag_collection import BagCollection, TableSpec
from .kernels.gather import PARALLEL_MIN_BYTES
from .kernels.out_of_range import ZERO
from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_sharded_embedding_bag_collection"]


@lowers(SHARDED_EMBEDDING_BAG_COLLECTION)
def lower_sharded_embedding_bag_collection(ctx: LoweringContext, node: Node) -> StepFn:
    attrs = node.attrs
    devices, shards = len(node.result_types), attrs["shards"]
    layout = PartialLayout(attrs, devices)
    pools, specs_of = [], []
    for k, held in enumerate(layout.held):
        specs = [TableSpec.of(node.inputs[s].dtype.value, _format(attrs, s)) for s in held]
        specs_of.append(specs)
        rows = [
            [f, held.index(s), POOL_MAX if attrs["modes"][t] == "max" else POOL_SUM, SKIP,
             ZERO, layout.column[f][k], attrs["widths"][f]]
            for f, t in enumerate(attrs["features"])
            for s in held
            if shards[s][0] == t
        ]  # fmt: skip
        pools.append(BagCollection(specs, np.array(rows, np.int64), np.int64) if rows else None)
    out_dtype = node.result_types[0].dtype.to_numpy()
    width = sum(attrs["widths"])

    def run(rt, slot, *inputs):
        count = len(shards)
        blocks, values, lengths = inputs[:count], inputs[count], inputs[count + 1]
        weights = None
        if attrs["has_weights"]:  # one per value, read where the routed ids say
            check_weights_shape(SHARDED_EMBEDDING_BAG_COLLECTION.name, inputs[-1].shape,
                                values.shape)  # fmt: skip
            weights = inputs[-1]
        routes = route_bags(attrs, np.asarray(values), np.asarray(lengths), devices)
        batch = lengths.shape[1]
        partials = []
        for k, pool in enumerate(pools):
            partial = np.zeros((batch, layout.widths[k]), np.float32)
            if pool is not None:
                tables = [
                    spec.rows(np.ascontiguousarray(blocks[s]))
                    for spec, s in zip(specs_of[k], layout.held[k], strict=True)
                ]
                parallel = routes.ids[k].size * 4 * width >= PARALLEL_MIN_BYTES
                pool(tables, routes.ids[k], routes.starts, partial, parallel, weights=weights)
            partials.append(partial)
        out = rt.empty(slot, (batch, width), out_dtype)
        pooled = combine_partials(attrs, layout, partials, routes.counts, routes.total)
        with np.errstate(over="ignore"):  # past float16's range: inf, as IEEE and xla give
            out[...] = pooled
        if devices == 1:
            return out
        out.flags.writeable = False  # one buffer: no device's result may change another's
        return tuple(out.view() for _ in range(devices))

    return run


def combine_partials(
    attrs: dict,
    layout: PartialLayout,
    partials: list[np.ndarray],
    counts: np.ndarray,
    total: np.ndarray,
) -> np.ndarray:
    """The `(batch, widths)` float32 result from every device's partials: sums added in device
    order (a mean's then divided by the bag's count), maxima over the devices that pooled any
    of the bag's values, zeros for a bag with none."""
    pieces = []
    for f, t in enumerate(attrs["features"]):
        width, mode = attrs["widths"][f], attrs["modes"][t]
        parts = [(k, partials[k][:, c : c + width]) for k, c in layout.column[f].items()]
        if mode == "max":  # a device that pooled none of a bag's values has no maximum of it
            pooled = [np.where(counts[k, f][:, None] > 0, part, -np.inf) for k, part in parts]
            acc = column_maxima(np.stack(pooled).astype(np.float32))
            acc[total[f] == 0] = 0.0
        else:
            acc = parts[0][1].copy()
            for _, part in parts[1:]:
                acc += part
            if mode == "mean":
                many = total[f] > 1
                acc[many] /= total[f][many, None].astype(np.float32)
        pieces.append(acc)
    return np.concatenate(pieces, axis=1)


def _format(attrs: dict, shard: int) -> str | None:
    encoding = attrs["encodings"][attrs["shards"][shard][0]]
    return encoding and encoding.name
