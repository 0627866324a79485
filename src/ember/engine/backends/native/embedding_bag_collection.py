"""Native lowering of `embedding_bag_collection`: lengths checked on the host and the ids of
features under "error" by one compiled pass, before anything is written, then one kernel call
for all the dense tables' features and one per quantized format (`kernels.bag_collection`)."""

from __future__ import annotations

import numpy as np

from ember.errors import out_of_range_error
from ember.graph import Node
from ember.graph.ops.embedding_bag import check_weights_shape
from ember.graph.ops.embedding_bag_collection import EMBEDDING_BAG_COLLECTION, check_lengths

from .kernels.bag import POOLS
from .kernels.bag_collection import BagCollection, TableSpec
from .kernels.gather import PARALLEL_MIN_BYTES
from .kernels.out_of_range import CLAMP, ERROR, ZERO
from .lowering import LoweringContext, StepFn, lowers

__all__ = ["lower_embedding_bag_collection"]

_MODES = {"error": ERROR, "zero": ZERO, "clamp": CLAMP}
"""ERROR tells the kernel that every id of the feature was checked to be a row."""


@lowers(EMBEDDING_BAG_COLLECTION)
def lower_embedding_bag_collection(ctx: LoweringContext, node: Node) -> StepFn:
    attrs = node.attrs
    count = len(attrs["modes"])
    specs = [
        TableSpec.of(table.dtype.value, encoding and encoding.name)
        for table, encoding in zip(node.inputs[:count], attrs["encodings"], strict=True)
    ]
    columns = np.cumsum((0, *attrs["widths"]))
    features = np.array(
        [
            [f, t, POOLS[attrs["modes"][t]], _padding(attrs["padding_idx"][t]),
             _MODES[attrs["out_of_range"][t]], columns[f], width]
            for f, (t, width) in enumerate(zip(attrs["features"], attrs["widths"], strict=True))
        ],
        np.int64,
    )  # fmt: skip
    checked = [
        (f, t) for f, t in enumerate(attrs["features"]) if attrs["out_of_range"][t] == "error"
    ]
    ids_dtype = node.inputs[count].dtype.to_numpy()
    out_dtype = node.result_types[0].dtype.to_numpy()
    row_bytes = 4 * int(columns[-1]) // len(attrs["features"])
    pools = BagCollection(specs, features, ids_dtype)
    has_weights = attrs["has_weights"]

    def run(rt, slot, *inputs):
        values, lengths = inputs[count], inputs[count + 1]
        flat = np.ascontiguousarray(values.reshape(-1))  # the kernels read ids by address
        weights = None
        if has_weights:
            check_weights_shape("embedding_bag_collection", inputs[-1].shape, values.shape)
            weights = inputs[-1]
        starts = check_lengths(np.asarray(lengths), flat.size)
        batch = lengths.shape[1]
        tables = [spec.rows(np.ascontiguousarray(inputs[t])) for t, spec in enumerate(specs)]
        out = rt.empty(slot, (batch, int(columns[-1])), out_dtype)
        pooled = out if out_dtype == np.float32 else np.empty(out.shape, np.float32)
        parallel = flat.size * row_bytes >= PARALLEL_MIN_BYTES
        bad = pools(tables, flat, starts, pooled, parallel, bool(checked), weights)
        if bad >= 0:  # nothing written
            vocab = next(tables[t].shape[0] for f, t in checked if bad < starts[(f + 1) * batch])
            raise out_of_range_error(flat.shape, bad, flat[bad].item(), vocab, "error")
        if pooled is not out:
            with np.errstate(over="ignore"):  # past float16's range: inf, as IEEE and xla give
                out[...] = pooled  # rounded once, to the dtype asked for
        return out

    run.fast_step = True  # reads only `rt.empty` of its runtime
    return run


def _padding(padding_idx: int | None) -> int:
    return -1 if padding_idx is None else padding_idx
