"""A named weight declared by a layer and bound to an array when the model loads.

>>> Weight("embed", DType.float32, [1000, 64])
Weight('embed', float32, [Dim(1000), Dim(64)], cpu:0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ember.dlpack import from_dlpack
from ember.dtype import DType

from .device import DeviceRef
from .dim import StaticDim
from .errors import GraphTypeError
from .quantization import QuantizationEncoding
from .shape import ShapeLike
from .type import TensorType, Typed
from .value import TensorValue

__all__ = ["Weight", "is_power_of_two"]


def is_power_of_two(value: object) -> bool:
    """Whether `value` is an int (not a bool) that is a positive power of 2: an alignment."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= 1
        and not value & (value - 1)
    )


class Weight(Typed):
    """A declaration: the graph gets one `weight` node per name the first time it is used."""

    def __init__(
        self,
        name: str,
        dtype: DType,
        shape: ShapeLike,
        device: DeviceRef | None = None,
        quantization_encoding: QuantizationEncoding | None = None,
        align: int | None = None,
    ) -> None:
        """`align` (MAX's): the bytes the bound array's address must be a multiple of, checked
        at load (a GGUF file's tensors come aligned to the file's alignment).

        Raises:
            ValueError: an empty name, a symbolic shape, or `align` not a positive power of 2.
            TypeError: `quantization_encoding` is not a QuantizationEncoding.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"a weight needs a non-empty str name, got {name!r}")
        self.name = name
        self.type = TensorType(dtype, shape, device or DeviceRef.CPU())
        if not all(isinstance(d, StaticDim) for d in self.type.shape):
            raise ValueError(f"weight {name!r} needs a static shape, got {self.type.shape}")
        if quantization_encoding is not None and not isinstance(
            quantization_encoding, QuantizationEncoding
        ):
            raise TypeError(
                "quantization_encoding must be a QuantizationEncoding, "
                f"got {quantization_encoding!r}"
            )
        self.quantization_encoding = quantization_encoding
        if align is not None and not is_power_of_two(align):
            raise ValueError(f"weight {name!r}: align must be a positive power of 2, got {align!r}")
        self.align = align

    def check_array(self, array: Any, name: str | None = None) -> np.ndarray:
        """`array` (numpy, memmap or any DLPack object) as a numpy view, if it fits this weight
        (named ``name`` in the errors: a module's full name for it; else its own).

        A checkpoint's tensor (`ember.weights.WeightData`) carries its block encoding, which
        must be this weight's: Q4_0 and Q4_K rows, say, have the same bytes. One that carries
        none is read as declared, as a plain array is (MAX's rule: an adapter's rebuilt
        tensor may not know its encoding). A weight of one element takes an array of shape
        ``()`` or ``(1,)``, as MAX's does.

        Raises:
            GraphTypeError (a TypeError and, as MAX raises, a ValueError): it is not an array,
                or its dtype differs from the declared one.
            ValueError: its shape differs from the declared one, a checkpoint tensor's
                encoding differs from the declared one, or its address is not a multiple of
                the declared `align`.
        """
        label = name or self.name
        if hasattr(array, "quantization_encoding") and isinstance(
            getattr(array, "array", None), np.ndarray
        ):
            carried = array.quantization_encoding
            if carried is not None and carried != self.quantization_encoding:

                def say(e: Any) -> str:
                    return "unquantized" if e is None else f"{e.value} blocks"

                raise ValueError(
                    f"weight {label!r} is declared {say(self.quantization_encoding)}, but "
                    f"checkpoint tensor {getattr(array, 'name', '?')!r} holds "
                    f"{say(carried)}; its bytes would decode to garbage"
                )
            array = array.array
        if not isinstance(array, np.ndarray):
            if not hasattr(array, "__dlpack__"):
                raise GraphTypeError(
                    f"weight {label!r}: expected a numpy array or a DLPack object, "
                    f"got {type(array).__name__}"
                )
            try:
                array = from_dlpack(array)
            except TypeError as error:  # e.g. torch refuses a tensor that requires grad
                raise GraphTypeError(f"weight {label!r}: {error}") from error
        try:
            dtype = DType.from_numpy(array.dtype)
        except TypeError:
            dtype = None
        encoding = self.quantization_encoding
        if encoding is not None and (dtype is not self.dtype or array.shape != self._shape()):
            rows, width = self._shape()
            raise (GraphTypeError if dtype is not self.dtype else ValueError)(
                f"weight {label!r} holds {encoding.value} blocks: expected "
                f"{self.dtype!r} of shape ({rows}, {width}), {width} bytes a row "
                f"({encoding.describe_row(width)}), got {array.dtype} of shape {array.shape}"
                + _as_values_hint(encoding, width, array.shape)
            )
        if dtype is not self.dtype:
            raise GraphTypeError(
                f"weight {label!r}: expected dtype {self.dtype!r}, got {array.dtype}; "
                "its bytes would be misread, so convert it first"
            )
        expected = self._shape()
        if array.shape != expected and {array.shape, expected} == {(), (1,)}:
            array = array.reshape(expected)  # one element either way
        if array.shape != expected:
            raise ValueError(f"weight {label!r}: expected shape {expected}, got {array.shape}")
        if self.align and array.size and array.ctypes.data % self.align:
            raise ValueError(
                f"weight {label!r} is declared align={self.align}, but its array starts "
                f"{array.ctypes.data % self.align} bytes past such an address"
            )
        return array

    def value(self) -> TensorValue:
        """This weight's node in the open graph (added on first use)."""
        from .ops.constant import as_value

        return as_value(self)

    def __getitem__(self, index: Any) -> TensorValue:
        """`weight[start:end]`, as MAX's layers slice a weight into shards."""
        return self.value()[index]

    def to(self, device: DeviceRef) -> TensorValue:
        return self.value().to(device)

    def cast(self, dtype: DType) -> TensorValue:
        return self.value().cast(dtype)

    def reshape(self, shape: ShapeLike) -> TensorValue:
        return self.value().reshape(shape)

    def transpose(self, dim_1: int, dim_2: int) -> TensorValue:
        return self.value().transpose(dim_1, dim_2)

    @property
    def T(self) -> TensorValue:
        """The transposed value, as `x @ self.weight.T` in MAX's linear layers reads it."""
        return self.value().T

    def _shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.shape)

    def __repr__(self) -> str:
        return f"Weight({self.name!r}, {self.dtype!r}, {self.shape}, {self.device})"


def _through_value(name: str):
    """`Weight.<name>`: the operator of the weight's value in the open graph, as MAX's
    `Weight` (a `TensorValue`) has it; with no graph open, the ValueError says so."""

    def method(self: Weight, *args: Any) -> TensorValue:
        return getattr(self.value(), name)(*args)

    method.__name__ = name
    return method


# Arithmetic, logic and ordering, forward and reflected. Not == and !=: a weight stays usable
# as a dict key and in `in` tests outside any graph.
for _name in (
    *(f"__{op}__" for op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul")),
    *(f"__r{op}__" for op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul")),
    *(f"__{op}__" for op in ("and", "or", "xor", "rand", "ror", "rxor")),
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__neg__",
    "__invert__",
):
    setattr(Weight, _name, _through_value(_name))


def _as_values_hint(encoding: QuantizationEncoding, width: int, shape: tuple[int, ...]) -> str:
    """Why a table declared with a width of both bytes and values (2304 for Q4_K) may not
    fit: the width was read as bytes, and the tensor holds that many values."""
    try:
        as_values = encoding.row_bytes(width)
    except ValueError:
        return ""
    if not shape or shape[-1] != as_values:
        return ""
    return (
        f"; a width of {width} was read as bytes, and this tensor holds {width} values a row: "
        f"declare {as_values} bytes"
    )
