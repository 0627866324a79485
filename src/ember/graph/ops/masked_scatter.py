"""`masked_scatter(input, mask, updates, out_dim)`: MAX's (and torch's) write of `updates`, in
order, into the places of `input` where `mask` is true. A vision-language model puts its image
features into the token embeddings so: the image tokens' rows take the features' rows.

>>> from ember.graph import Graph, TensorType
>>> types = [TensorType(DType.int64, ["seq"]), TensorType(DType.float32, ["image", 4])]
>>> with Graph("g", input_types=types) as g:
...     ids, features = g.inputs
...     embedded = broadcast_to(unsqueeze(cast(ids, DType.float32), -1), [ids.shape[0], 4])
...     is_image = unsqueeze(ids == constant(7, DType.int64, DeviceRef.CPU()), -1)
...     merged = masked_scatter(embedded, is_image, features, out_dim=features.shape[0] * 4)
>>> merged.shape
[Dim('seq'), Dim(4)]

The mask broadcasts to `input`'s shape. The k-th true place (in row-major order) takes the
k-th element of the flattened `updates`; a single update fills every true place, as in MAX.
`out_dim` counts true places after the broadcast, elements rather than rows: for image
features of `(image, hidden)` it is `image * hidden`, as in the example.
At each execution the updates must cover the true places, and where `out_dim` (the count
of true places) is a number or dims the graph's inputs bind, the count must equal it;
either is one clear error otherwise. An `out_dim` with a symbol that no input binds only
names the count, as in MAX (no part of it is checked).
"""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..device import DeviceRef  # noqa: F401 - used by the doctest
from ..dim import Dim
from ..errors import GraphTypeError
from ..graph import current_graph
from ..op import Op
from ..value import TensorValue
from .broadcast_to import broadcast_to
from .cast import cast  # noqa: F401 - used by the doctest
from .constant import as_value, constant  # noqa: F401 - used by the doctest
from .dim_binders import full_binders
from .squeeze import unsqueeze  # noqa: F401 - used by the doctest

__all__ = ["MASKED_SCATTER", "masked_scatter", "masked_scatter_error"]

MASKED_SCATTER = Op("masked_scatter")


def masked_scatter(input: Any, mask: Any, updates: Any, out_dim: Any) -> TensorValue:
    """A copy of `input` whose places where `mask` is true hold `updates`' elements, in order.

    Raises:
        GraphTypeError: a mask that is not bool, or updates of another dtype than `input`
            (MAX's `ValueError`).
        ValueError: devices that differ, or a mask that does not broadcast to `input`.
    """
    x, m, u = as_value(input), as_value(mask), as_value(updates)
    if m.dtype is not DType.bool:
        raise GraphTypeError(f"masked_scatter: the mask must be bool, got {m.dtype!r}")
    if x.dtype != u.dtype:
        raise GraphTypeError(
            f"The input dtype ({x.dtype}) and updates dtype ({u.dtype}) must match"
        )
    if not x.device == m.device == u.device:
        raise ValueError(
            f"masked_scatter: input, mask and updates must be on the same device; they live on "
            f"{x.device}, {m.device} and {u.device}"
        )
    m = broadcast_to(m, x.shape)
    count = Dim(out_dim)
    graph = current_graph()
    binders = full_binders(graph, count.symbols(), x.device)
    attrs = {"out_dim": None if binders is None else count}
    return graph.add_node(MASKED_SCATTER, [x, m, u, *(binders or [])], attrs, [x.type])[0]


def masked_scatter_error(count: int, updates: int, expected: int = -1) -> ValueError:
    """The error for a mask that does not fit at execution (each backend's lowering raises it):
    `count` true places against `expected` (when out_dim is checked and differs), else more
    true places than `updates` elements."""
    if expected >= 0 and count != expected:
        return ValueError(
            f"masked_scatter: the mask has {count} true places, and out_dim is {expected} at "
            "this execution"
        )
    return ValueError(
        f"masked_scatter: the mask has {count} true places, and the updates hold {updates} elements"
    )
