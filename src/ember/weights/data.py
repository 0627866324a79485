"""`WeightData`: one checkpoint tensor as a session binds it, carrying what its bytes mean.

Q4_0 and Q4_K take the same bytes per row, and so do Q5_0 and Q5_K: the array alone cannot say
which it holds. A `WeightData` carries its encoding, and `InferenceSession.load` checks it
against the graph's `Weight`, so a table bound to the wrong format is an error, not garbage.

>>> import numpy as np
>>> from ember.graph import QuantizationEncoding
>>> data = WeightData("tok", np.zeros((4, 144), np.uint8), DType.uint8, (4, 256),
...                   QuantizationEncoding.Q4_K)
>>> data
WeightData('tok', q4_k, (4, 256), 576 bytes)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.dtype import DType
from ember.graph import QuantizationEncoding

__all__ = ["WeightData"]


@dataclass(frozen=True, eq=False)
class WeightData:
    """A tensor of a checkpoint: `array` maps the file (no copy); `shape` is the logical shape
    (rows, values per row); a quantized tensor's `array` is uint8 `(rows, row_bytes)` of GGUF
    blocks, its `dtype` uint8 and its `quantization_encoding` the block format."""

    name: str
    array: np.ndarray
    dtype: DType
    shape: tuple[int, ...]
    quantization_encoding: QuantizationEncoding | None = None

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    @property
    def is_quantized(self) -> bool:
        return self.quantization_encoding is not None

    @property
    def kind(self) -> str:
        """The encoding's name, or the element type's."""
        encoding = self.quantization_encoding
        return encoding.name if encoding is not None else repr(self.dtype)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return np.array(self.array, dtype=dtype, copy=copy)

    def __repr__(self) -> str:
        return f"WeightData({self.name!r}, {self.kind}, {self.shape}, {self.nbytes} bytes)"
