"""`qmatmul(encoding, config, lhs, *rhs)`: float32 `lhs` times a transposed table of GGUF
blocks, `lhs @ dequantize(rhs).T`, MAX's signature; the dequantized table is never made whole.

>>> from ember.graph import Graph, TensorType, Weight
>>> q4_k = QuantizationEncoding.Q4_K
>>> table = Weight("table", DType.uint8, [1000, 144], quantization_encoding=q4_k)
>>> with Graph("g", input_types=[TensorType(DType.float32, ["batch", 256])]) as g:
...     logits = qmatmul(q4_k, None, g.inputs[0], table)
>>> logits.shape, logits.dtype
([Dim('batch'), Dim(1000)], float32)
"""

from __future__ import annotations

from typing import Any

from ember.dtype import DType
from ember.quant import FORMATS

from ..dim import StaticDim
from ..graph import current_graph
from ..op import Op
from ..quantization import QuantizationEncoding
from ..type import TensorType
from ..value import TensorValue
from .constant import as_value

__all__ = ["INT8_ACTIVATION_FORMATS", "QMATMUL", "qmatmul"]

QMATMUL = Op("qmatmul")

INT8_ACTIVATION_FORMATS = ("q4_k", "q6_k")
"""The formats whose products `int8_activations=True` takes from 8-bit activations (where a
backend has the integer kernel); the others stay exact."""


def qmatmul(
    encoding: QuantizationEncoding,
    config: Any,
    lhs: Any,
    *rhs: Any,
    int8_activations: bool = False,
) -> TensorValue:
    """`lhs @ dequantize(rhs).T` in float32: `lhs` `(..., M, K)` float32 against `rhs`, one
    uint8 table `(N, row bytes)` whose rows hold `K` values each (transposed, as MAX takes
    it); the result is `(..., M, N)` float32.

    Exact by default: `lhs` enters the dot products as it is, each row is decoded bit for bit
    as `gguf.quants.dequantize` does, and products accumulate in float32. With
    `int8_activations=True`, `lhs` is quantized to 8 bits per block of 256 values (as MAX and
    llama.cpp's Q8_K do) so that integer dot products can be used: each logit then differs
    from the exact one by at most ``sum over blocks of max|lhs|_block / 254 * sum |w|_block``
    plus float32 rounding (the native int8 kernel's docstring derives it; it holds for blocks
    whose max ``|lhs|`` is at least ``127 * 2**-126``, where the scale is a normal float32,
    and on `xla`, which flushes subnormals to zero, smaller blocks count as 0). Formats outside
    `INT8_ACTIVATION_FORMATS`, and CPUs without AVX2 on the native backend, compute
    exactly. Every block format of `ember.quant.FORMATS` is
    taken; `config` is for GPTQ, which has no row blocks, and must be None.

    Raises:
        ValueError: `encoding` is not a block format of the registry, a `config` is given,
            not exactly one `rhs`, `K` does not match the rows' values, or the operands live
            on different devices.
        TypeError: `rhs` is not uint8 or not a matrix, `lhs` is not float32 or of rank < 2,
            or `int8_activations` is not a bool.
    """
    if not isinstance(encoding, QuantizationEncoding) or encoding.name not in FORMATS:
        raise ValueError(
            f"qmatmul: unsupported quantization encoding {encoding!r}; "
            f"expected one of {', '.join(f.upper() for f in FORMATS)}"
        )
    if config is not None:
        raise ValueError(
            f"qmatmul: {encoding.value} is a GGUF block format and takes no quantization "
            f"config; pass None, got {config!r}"
        )
    if not isinstance(int8_activations, bool):
        raise TypeError(f"qmatmul: int8_activations must be a bool, got {int8_activations!r}")
    if len(rhs) != 1:
        raise ValueError(f"qmatmul: expected one quantized rhs table, got {len(rhs)}")
    left, right = as_value(lhs), as_value(rhs[0])
    if right.dtype is not DType.uint8:
        raise TypeError(f"qmatmul: rhs must be uint8 blocks, got {right.dtype!r}")
    if right.rank != 2:
        raise TypeError(f"qmatmul: rhs must be a matrix (N, row bytes), got shape {right.shape}")
    if left.dtype is not DType.float32:
        raise TypeError(f"qmatmul: lhs must be float32, got {left.dtype!r}")
    if left.rank < 2:
        raise TypeError(f"qmatmul: lhs must have rank 2 or more, got shape {left.shape}")
    if left.device != right.device:
        raise ValueError(
            f"qmatmul: lhs and rhs must be on the same device; lhs lives on {left.device} and "
            f"rhs on {right.device}: move one with .to(device)"
        )
    row_bytes = right.shape[1]
    if not isinstance(row_bytes, StaticDim):
        raise ValueError(f"qmatmul: rhs rows must have a static byte width, got {right.shape}")
    width = encoding.hidden_size(int(row_bytes))
    if left.shape[-1] != StaticDim(width):
        raise ValueError(
            f"qmatmul: lhs of width {left.shape[-1]} does not match the {encoding.value} rows "
            f"of {int(row_bytes)} bytes, which hold {width} values"
        )
    result = TensorType(DType.float32, [*left.shape[:-1], right.shape[0]], left.device)
    return current_graph().add_node(
        QMATMUL,
        [left, right],
        {"encoding": encoding, "int8_activations": int8_activations},
        [result],
    )[0]
