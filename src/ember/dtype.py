"""Element types of tensors, with their numpy and ml_dtypes counterparts.

>>> DType.float32
float32
>>> str(DType.bfloat16)
'DType.bfloat16'
>>> DType.bfloat16.size_in_bytes, DType.float64.align
(2, 8)
>>> DType.from_numpy(np.dtype("int32"))
int32
"""

from __future__ import annotations

import enum

import ml_dtypes
import numpy as np

__all__ = ["DType"]


class DType(enum.Enum):
    """The element type of a tensor, named and ordered as MAX names and orders them."""

    bool = "bool"
    int8 = "int8"
    int16 = "int16"
    int32 = "int32"
    int64 = "int64"
    uint8 = "uint8"
    uint16 = "uint16"
    uint32 = "uint32"
    uint64 = "uint64"
    float16 = "float16"
    float32 = "float32"
    float64 = "float64"
    bfloat16 = "bfloat16"
    float4_e2m1fn = "float4_e2m1fn"
    float6_e2m3fn = "float6_e2m3fn"
    float6_e3m2fn = "float6_e3m2fn"
    float8_e8m0fnu = "float8_e8m0fnu"
    float8_e4m3fn = "float8_e4m3fn"
    float8_e4m3fnuz = "float8_e4m3fnuz"
    float8_e5m2 = "float8_e5m2"
    float8_e5m2fnuz = "float8_e5m2fnuz"

    def __repr__(self) -> str:
        return self.value

    def __str__(self) -> str:
        return f"DType.{self.value}"

    @property
    def size_in_bytes(self) -> int:
        """Bytes one element occupies in memory (sub-byte floats take a whole byte)."""
        return _SIZES[self]

    @property
    def size_in_bits(self) -> int:
        """Bits of one element's value, as MAX counts them: 4 for `float4_e2m1fn` (which takes a
        whole byte in memory here), else 8 per byte."""
        return 4 if self is DType.float4_e2m1fn else 8 * _SIZES[self]

    @property
    def align(self) -> int:
        """The byte boundary an element must start on: its numpy type's alignment (sub-byte
        floats, which take a whole byte, align to 1)."""
        return _ALIGNMENTS[self]

    def is_float(self) -> bool:
        """True for every floating-point type, narrow ones included."""
        return self.value.startswith(("float", "bfloat"))

    def is_integral(self) -> bool:
        """True for signed and unsigned integers (not bool)."""
        return self.value.startswith(("int", "uint"))

    def is_signed_integral(self) -> bool:
        return self.value.startswith("int")

    def is_unsigned_integral(self) -> bool:
        return self.value.startswith("uint")

    def is_float8(self) -> bool:
        """True for the 8-bit floats (`float8_e4m3fn`, `float8_e5m2`, ...)."""
        return self.value.startswith("float8")

    def is_half(self) -> bool:
        """True for the 16-bit floats, `float16` and `bfloat16`."""
        return self in (DType.float16, DType.bfloat16)

    def to_numpy(self) -> np.dtype:
        """The numpy dtype holding this type; bfloat16 and the narrow floats come from ml_dtypes.

        Raises:
            TypeError: numpy (with ml_dtypes) has no type for this one.
        """
        dtype = _TO_NUMPY.get(self)
        if dtype is None:
            raise TypeError(f"{self!s} has no numpy equivalent (ml_dtypes {ml_dtypes.__version__})")
        return dtype

    @classmethod
    def from_numpy(cls, dtype: np.dtype | type) -> DType:
        """The DType of a numpy dtype (or scalar type).

        Raises:
            TypeError: the numpy dtype has no DType (complex, strings, objects...).
        """
        try:
            key = np.dtype(dtype)
        except TypeError as exc:
            raise TypeError(f"{dtype!r} is not a numpy dtype") from exc
        found = _FROM_NUMPY.get(key)
        if found is None:
            known = ", ".join(sorted(str(d) for d in _FROM_NUMPY))
            raise TypeError(f"numpy dtype {key} has no DType; supported: {known}")
        return found


def _numpy_types() -> dict[DType, np.dtype]:
    table: dict[DType, np.dtype] = {}
    for member in DType:
        source = np if hasattr(np, member.value) and member.value != "bool" else ml_dtypes
        if member is DType.bool:
            table[member] = np.dtype(np.bool_)
        elif hasattr(source, member.value):
            table[member] = np.dtype(getattr(source, member.value))
    return table


_TO_NUMPY = _numpy_types()
_FROM_NUMPY = {dtype: member for member, dtype in _TO_NUMPY.items()}
_SIZES = {member: (_TO_NUMPY[member].itemsize if member in _TO_NUMPY else 1) for member in DType}
_ALIGNMENTS = {
    member: (_TO_NUMPY[member].alignment if member in _TO_NUMPY else 1) for member in DType
}
