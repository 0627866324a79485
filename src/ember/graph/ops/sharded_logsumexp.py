"""`sharded_logsumexp(shards)`: `log(sum(exp(x)))` over a vocabulary split across devices, on
every device, from one `(max, sum)` pair per token and device.

Each device reduces its own columns to their largest value `m_d` and `s_d = sum(exp(x - m_d))`;
the pairs cross devices and every device combines them in one order as Megatron's
vocabulary-parallel cross-entropy does: `M = max_d m_d`, `lse = M + log(sum_d s_d exp(m_d - M))`.

>>> from ember.graph import DeviceRef, Graph, TensorType
>>> types = [TensorType(DType.float32, ["batch", 500], DeviceRef.CPU(i)) for i in range(2)]
>>> with Graph("g", input_types=types) as g:
...     lse_0, lse_1 = sharded_logsumexp(g.inputs)
>>> lse_1.shape, lse_1.dtype, lse_1.device
([Dim('batch'), Dim(1)], float32, DeviceRef.CPU(id=1))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ember.dtype import DType

from ..dim import StaticDim
from ..graph import current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .vocab_shards import vocab_shards

__all__ = ["SHARDED_LOGSUMEXP", "sharded_logsumexp"]

SHARDED_LOGSUMEXP = Op("sharded_logsumexp", cross_device=True)


def sharded_logsumexp(shards: Sequence[Any]) -> list[TensorValue]:
    """The float32 log-sum-exp over all shards' last axes, which stays as a dim of size 1 (as
    in `logsumexp`), on each shard's device; every device gets the same bits.

    It differs from `logsumexp` of the concatenated shards only by rounding, for finite
    values by at most `eps32 * (2 * vocabulary + 8 + 2 * |lse|)`: each computes the sum of
    the `exp(x - m)` to within `(vocabulary + 4) * eps32` of it relatively (in any order of
    addition; `exp` and the rescaling by `exp(m_d - M)` round a few times more), the log
    turns that into an absolute error, and adding `M` rounds once. Infinities and NaN give
    what `logsumexp` gives: -inf alone gives -inf, any +inf gives +inf, any NaN gives NaN.

    Raises:
        TypeError: the shards are not one float dtype.
        ValueError: shards that do not fit together (see `vocab_shards`).
    """
    checked = vocab_shards("sharded_logsumexp", shards)
    shape = [*checked.values[0].shape[:-1], StaticDim(1)]
    results = [TensorType(DType.float32, shape, d) for d in checked.devices]
    return list(current_graph().add_node(SHARDED_LOGSUMEXP, checked.values, checked.attrs, results))
