"""GGUF's unquantized tensor types: a GGML type id and the element type it stores.

>>> PLAIN_GGML_TYPES[30] is DType.bfloat16
True
"""

from __future__ import annotations

from ember.dtype import DType

__all__ = ["PLAIN_GGML_TYPES"]

PLAIN_GGML_TYPES: dict[int, DType] = {
    0: DType.float32,
    1: DType.float16,
    30: DType.bfloat16,
    24: DType.int8,
    25: DType.int16,
    26: DType.int32,
    27: DType.int64,
    28: DType.float64,
}
"""GGML type id -> element type, for the types one element per value."""
