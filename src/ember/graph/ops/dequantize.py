"""`dequantize(encoding, quantized)`: rows of GGUF blocks back to floating-point values.

>>> from ember.graph import Graph, TensorType
>>> with Graph("g", input_types=[TensorType(DType.uint8, ["n", 288])]) as g:
...     x = dequantize(QuantizationEncoding.Q4_K, g.inputs[0])
>>> x.shape, x.dtype
([Dim('n'), Dim(512)], float32)
"""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..dim import StaticDim
from ..errors import GraphTypeError
from ..graph import Node, current_graph
from ..op import Op
from ..quantization import QuantizationEncoding
from ..type import TensorType
from ..value import TensorValue
from .constant import as_value
from .gather import GATHER
from .sharded_gather import SHARDED_GATHER

__all__ = ["DEQUANTIZE", "DEQUANTIZED_DTYPES", "dequantize", "reads_zeroed_rows"]

DEQUANTIZE = Op("dequantize")

DEQUANTIZED_DTYPES = (DType.float32, DType.bfloat16, DType.float16)


def dequantize(
    encoding: QuantizationEncoding, quantized: Any, out_dtype: DType = DType.float32
) -> TensorValue:
    """Values of `quantized`, a uint8 tensor whose last axis is a row of whole blocks.

    Raises:
        TypeError: `encoding` is not a QuantizationEncoding, the input is not uint8, or
            `out_dtype` is not float32, bfloat16 or float16.
        ValueError: the encoding has no blocks (GPTQ) or the last axis is not a whole number
            of blocks.
        GraphTypeError: the last axis is not static (a TypeError as in MAX, and a ValueError).
    """
    if not isinstance(encoding, QuantizationEncoding):
        raise TypeError(f"dequantize: expected a QuantizationEncoding, got {encoding!r}")
    value = as_value(quantized)
    if value.dtype is not DType.uint8:
        raise TypeError(f"dequantize: quantized data is uint8 bytes, got {value.dtype!r}")
    if out_dtype not in DEQUANTIZED_DTYPES:
        raise TypeError(
            f"dequantize: out_dtype must be one of {DEQUANTIZED_DTYPES}, got {out_dtype!r}"
        )
    if value.rank == 0 or not isinstance(value.shape[-1], StaticDim):
        raise GraphTypeError(
            "dequantize only supported with static last dimension: the last axis must be "
            f"static bytes, got {value.shape}"
        )
    hidden = encoding.hidden_size(int(value.shape[-1]))
    result = TensorType(out_dtype, [*value.shape[:-1], hidden], value.device)
    attrs = {"encoding": encoding}
    return current_graph().add_node(DEQUANTIZE, [value], attrs, [result])[0]


def reads_zeroed_rows(node: Node) -> bool:
    """Whether a dequantize node's bytes come from a gather that zeroes out-of-range ids' rows.

    Several formats decode zero bytes to -0.0 (Q4_0's ``d * (q - 8)`` with ``d = 0``), but where
    the gather and the decode fuse a zeroed row is +0.0; the backends decode an all-zero row
    after such a gather to +0.0 when they do not fuse either. (A table's own all-zero row, which
    no quantizer writes for those formats, is then +0.0 too, where the fused lookup gives
    gguf's -0.0.)
    """
    source = node.inputs[0].node
    return source.op in (GATHER, SHARDED_GATHER) and source.attrs["out_of_range"] == "zero"
