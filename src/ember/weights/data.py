"""`WeightData`: one checkpoint tensor as a session binds it, carrying what its bytes mean.

Q4_0 and Q4_K take the same bytes per row, and so do Q5_0 and Q5_K: the array alone cannot say
which it holds. A `WeightData` carries its encoding, and `InferenceSession.load` checks it
against the graph's `Weight`, so a table bound to the wrong format is an error, not garbage.
It is also MAX's `max.graph.weights.WeightData`: the same fields, in the same order.

>>> import numpy as np
>>> from ember.graph import QuantizationEncoding
>>> data = WeightData(np.zeros((4, 144), np.uint8), "tok", DType.uint8, (4, 256),
...                   QuantizationEncoding.Q4_K)
>>> data
WeightData('tok', q4_k, (4, 256), 576 bytes)
>>> WeightData.from_numpy(np.ones((2, 3), np.float32), "w").astype(DType.float16)
WeightData('w', float16, (2, 3), 12 bytes)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.dlpack import from_dlpack
from ember.driver import Buffer
from ember.dtype import DType
from ember.graph import QuantizationEncoding

__all__ = ["WeightData"]


@dataclass(eq=False)
class WeightData:
    """A tensor of a checkpoint: `data` maps the file (no copy), as a driver `Buffer` (its
    numpy view is `array`); `shape` is the logical shape (rows, values per row); a quantized
    tensor's `data` is uint8 `(rows, row_bytes)` of GGUF blocks, its `dtype` uint8 and its
    `quantization_encoding` the block format.

    As MAX's: `data` may be given as any DLPack array; raw bytes (an unsigned integer array)
    are read as a `dtype` of their element size (``dataclasses.replace(scales,
    dtype=DType.float8_e8m0fnu)`` over uint8 scales); a quantized tensor's `shape` may be
    given as its bytes, and is kept as its values. The name may come first (ember's earlier
    order): a str is never the array. Change fields with ``dataclasses.replace``, which checks
    them again (assigning one does not).

    Raises:
        TypeError: `data` is not an array, `name` is not a str, or `dtype` not a DType.
        ValueError: `dtype` is not the array's (nor raw bytes of its size), or `shape` is
            neither the array's shape nor (quantized) its rows of values.
    """

    data: Buffer
    name: str
    dtype: DType
    shape: tuple[int, ...]
    quantization_encoding: QuantizationEncoding | None = None

    def __post_init__(self) -> None:
        data, name = self.data, self.name
        if isinstance(data, str) and not isinstance(name, str):
            data, name = name, data  # ember's earlier order: name, then array
        if not isinstance(name, str):
            raise TypeError(f"a WeightData's name is a str, got {type(name).__name__}")
        if not isinstance(self.dtype, DType):
            raise TypeError(f"WeightData {name!r}: dtype must be a DType, got {self.dtype!r}")
        self.name = name
        self.data = Buffer.from_numpy(self._array_of(data))
        self.shape = self._logical_shape(tuple(int(d) for d in self.shape))

    def _array_of(self, data: object) -> np.ndarray:
        """`data`'s numpy view, read as `dtype`."""
        if not isinstance(data, np.ndarray):
            if not hasattr(data, "__dlpack__"):
                raise TypeError(
                    f"WeightData {self.name!r}: data is a numpy array or a DLPack array, got "
                    f"{type(data).__name__}"
                )
            data = from_dlpack(data)
        wanted = self.dtype.to_numpy()
        if data.dtype != wanted:
            if data.dtype.kind != "u" or data.dtype.itemsize != wanted.itemsize:
                raise ValueError(
                    f"WeightData {self.name!r}: dtype {self.dtype!r} is not its array's "
                    f"{data.dtype}; only raw bytes (an unsigned integer array of the same "
                    "element size) are read as another dtype: convert the array, or .view() it"
                )
            data = data.view(wanted)
        return data

    def _logical_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        stored = tuple(self.array.shape)
        encoding = self.quantization_encoding
        if encoding is None or not stored:
            if shape != stored:
                raise ValueError(
                    f"WeightData {self.name!r}: shape {shape} is not its array's {stored}"
                )
            return shape
        values = (*stored[:-1], encoding.hidden_size(stored[-1]))
        if shape not in (stored, values):
            raise ValueError(
                f"WeightData {self.name!r}: shape {shape} is neither its {encoding.value} "
                f"array's bytes {stored} nor their values {values}"
            )
        return values

    @property
    def array(self) -> np.ndarray:
        """The tensor's numpy view (no copy), as ember's own code reads it."""
        data = self.data
        return data.to_numpy() if isinstance(data, Buffer) else from_dlpack(data)

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

    @classmethod
    def from_numpy(cls, arr: np.ndarray, name: str) -> WeightData:
        """`arr` under `name`, its dtype and shape its own (MAX's constructor)."""
        arr = np.asarray(arr)
        return cls(arr, name, DType.from_numpy(arr.dtype), arr.shape)

    def astype(self, dtype: DType) -> WeightData:
        """The values converted to `dtype` (a copy; this one when it is already `dtype`).

        Raises:
            TypeError: the tensor is quantized and `dtype` is another (its bytes are blocks:
                dequantize them, or bind it to a weight of its encoding), or `dtype` is not a
                DType.
        """
        if not isinstance(dtype, DType):
            raise TypeError(f"astype takes a DType, got {dtype!r}")
        if dtype is self.dtype:
            return self
        if self.quantization_encoding is not None:
            raise TypeError(
                f"WeightData {self.name!r} holds {self.quantization_encoding.value} blocks, "
                f"whose bytes do not convert to {dtype!r}"
            )
        return WeightData.from_numpy(self.array.astype(dtype.to_numpy()), self.name)

    def to_buffer(self) -> Buffer:
        """The data as a driver `Buffer`, sharing its memory."""
        return self.data

    def __dlpack__(self, **kwargs: Any) -> Any:
        return self.data.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self.data.__dlpack_device__()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return np.array(self.array, dtype=dtype, copy=copy)

    def __repr__(self) -> str:
        return f"WeightData({self.name!r}, {self.kind}, {self.shape}, {self.nbytes} bytes)"
