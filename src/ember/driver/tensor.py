"""`Tensor`: an array on a device, shared without copies with numpy and DLPack consumers.

>>> import numpy as np
>>> t = Tensor.from_numpy(np.arange(6, dtype=np.int32).reshape(2, 3))
>>> t.shape, t.dtype, t.device, t.is_host
((2, 3), int32, CPU(id=0), True)
>>> np.shares_memory(t.to_numpy(), np.from_dlpack(t))
True
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ember.dlpack import DLPACK_CPU, NARROW_FLOAT_CODES, from_dlpack, to_dlpack_capsule
from ember.dtype import DType

from .device import CPU, Device

__all__ = ["Buffer", "Tensor"]


class Tensor:
    """A result or input of a model: a numpy array underneath on the native backend, a JAX
    array on XLA (`to_numpy()` then copies it to the host, and DLPack hands it on as is)."""

    __slots__ = ("_array", "device")

    def __init__(
        self,
        array: np.ndarray | DType | None = None,
        *args: Any,
        pinned: bool = False,
        dtype: DType | None = None,
        **kwargs: Any,
    ) -> None:
        """`Tensor(array, device=None)` wraps a numpy array without copying it;
        `Tensor(dtype, shape, device=None)` (MAX's `Buffer(dtype, shape, device)`, its
        arguments also by keyword) is a new one of zeros. MAX's `pinned` (page-locked host
        memory) has nothing to do here.

        Raises:
            TypeError: neither form, or a dtype a graph cannot hold.
        """
        if dtype is not None:
            if isinstance(array, DType):
                raise TypeError("Tensor(dtype, shape, device=None) got its dtype twice")
            if array is not None:
                raise TypeError("Tensor(array, device=None) takes no dtype: cast the array")
            array = dtype
        if array is None:
            raise TypeError("Tensor takes an array, or a dtype and a shape")
        names = ("shape", "device") if isinstance(array, DType) else ("device",)
        if len(args) > len(names) or set(kwargs) - set(names[len(args) :]):
            form = "dtype, shape, device=None" if len(names) == 2 else "array, device=None"
            raise TypeError(f"Tensor({form}) got {len(args) + 1} positional and {sorted(kwargs)}")
        given = dict(zip(names, args, strict=False)) | kwargs
        device = given.get("device")
        if isinstance(array, DType):
            if "shape" not in given:
                raise TypeError("Tensor(dtype, shape, device=None) needs a shape")
            made = Tensor.zeros(given["shape"], array, device)
            self._array, self.device = made._array, made.device
            return
        if not isinstance(array, np.ndarray):
            raise TypeError(f"Tensor wraps a numpy array, got {type(array).__name__}")
        DType.from_numpy(array.dtype)  # rejects dtypes a graph cannot hold
        self._array = array
        self.device = device if device is not None else CPU()

    @classmethod
    def _of(cls, array: np.ndarray, device: Device) -> Tensor:
        """Wraps an array the engine made, skipping the checks (its dtype is known good)."""
        tensor = object.__new__(cls)
        tensor._array, tensor.device = array, device
        return tensor

    @classmethod
    def from_numpy(cls, array: np.ndarray) -> Tensor:
        """Wraps `array` without copying it."""
        return cls(np.asarray(array))

    @classmethod
    def from_dlpack(cls, obj: Any) -> Tensor:
        """Wraps any host-memory DLPack producer (torch, jax, cupy on host) without copying."""
        if isinstance(obj, Tensor):
            return obj
        return cls(from_dlpack(obj))

    @classmethod
    def zeros(cls, shape: Any, dtype: DType, device: Device | None = None) -> Tensor:
        """A tensor of zeros on `device` (the host CPU by default).

        Raises:
            TypeError: `dtype` is not a DType.
        """
        if not isinstance(dtype, DType):
            raise TypeError(f"zeros: dtype must be a DType, got {dtype!r}")
        return cls(np.zeros(shape, dtype.to_numpy())).to(device or CPU())

    @classmethod
    def scalar(cls, value: Any, dtype: DType, device: Device | None = None) -> Tensor:
        """A rank-0 tensor holding `value` as `dtype`, on `device` (the host CPU by default);
        a float past a float dtype's range is infinite.

        Raises:
            TypeError: `dtype` is not a DType, or `value` is not a number.
            OverflowError: `value` is not a value of an integer or bool `dtype` (a fraction,
                or out of its range).
        """
        if not isinstance(dtype, DType):
            raise TypeError(f"scalar: dtype must be a DType, got {dtype!r}")
        target = np.dtype(dtype.to_numpy())
        if not isinstance(value, numbers.Number | np.generic):
            raise TypeError(f"scalar: takes a number, got {type(value).__name__}")
        if target.kind in "iub" and not _fits(value, target):
            raise OverflowError(f"scalar: {value!r} is not a {dtype!r} value")
        with np.errstate(over="ignore"):  # a float past the dtype is inf, as MAX's constant
            return cls(np.array(value, target)).to(device or CPU())

    def to(self, device: Device) -> Tensor:
        """This tensor on `device`: the same memory on any CPU device, a copy on an
        accelerator (through JAX) or back from one.

        Raises:
            TypeError: `device` is not an ember.driver device.
        """
        if not isinstance(device, Device):
            raise TypeError(f"to: expected an ember.driver device, got {device!r}")
        if device.is_host:
            return Tensor._of(self.to_numpy(), device)
        import jax

        accelerator = [d for d in jax.devices() if d.platform != "cpu"][device.id]
        return Tensor._of(jax.device_put(self._array, accelerator), device)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._array.shape)

    @property
    def dtype(self) -> DType:
        return DType.from_numpy(np.dtype(self._array.dtype))

    @property
    def rank(self) -> int:
        return self._array.ndim

    @property
    def num_elements(self) -> int:
        """How many elements the tensor holds (1 for rank 0)."""
        return math.prod(self.shape)

    @property
    def element_size(self) -> int:
        """The bytes of one element."""
        return np.dtype(self._array.dtype).itemsize

    @property
    def is_contiguous(self) -> bool:
        """Whether the elements lie in row-major order without gaps (a slice may not)."""
        array = self._array
        return array.flags.c_contiguous if isinstance(array, np.ndarray) else True

    @property
    def is_host(self) -> bool:
        """Whether the memory is the host's (any CPU device), so numpy reads it in place."""
        return self.device.is_host

    def to_numpy(self) -> np.ndarray:
        """A host array: the array itself (no copy, changes show through both), or a host
        copy of a device array."""
        array = self._array
        return array if isinstance(array, np.ndarray) else np.asarray(array)

    def item(self) -> Any:
        """The one element of a tensor of one element, as a Python number or bool.

        Raises:
            ValueError: the tensor holds more or fewer elements than one.
        """
        if self.num_elements != 1:
            raise ValueError(f"item: the tensor holds {self.num_elements} elements, not one")
        value = self.to_numpy().reshape(()).item()
        return value if isinstance(value, bool | int | float) else float(value)  # ml_dtypes

    def copy(self, device: Device | None = None) -> Tensor:
        """A copy of the elements, on `device` (this tensor's by default)."""
        return Tensor._of(self._array.copy(), self.device).to(device or self.device)

    def contiguous(self) -> Tensor:
        """A copy whose elements lie in row-major order."""
        array = self._array
        if isinstance(array, np.ndarray):
            return Tensor._of(np.array(array, order="C", copy=True), self.device)
        return self.copy()

    def view(self, dtype: DType, shape: Any = None) -> Tensor:
        """The same host memory read as `dtype` (and `shape`): the last axis rescaled by the
        two dtypes' sizes where no shape is given.

        Raises:
            ValueError: the bytes cannot be read so (numpy's rules), or a device's tensor.
        """
        if not isinstance(dtype, DType):
            raise TypeError(f"view: dtype must be a DType, got {dtype!r}")
        array = self._host("view")
        viewed = array.view(dtype.to_numpy())
        return Tensor._of(viewed if shape is None else viewed.reshape(shape), self.device)

    def inplace_copy_from(self, src: Any) -> None:
        """Copy `src`'s elements (a tensor or array of this shape) into this tensor's memory.

        Raises:
            ValueError: another shape or dtype, a read-only tensor, or an accelerator's.
        """
        source = src.to_numpy() if isinstance(src, Tensor) else np.asarray(src)
        target = self._host("inplace_copy_from")
        if source.shape != self.shape or source.dtype != target.dtype:
            raise ValueError(
                f"inplace_copy_from: {source.dtype} {source.shape} into {self.dtype!r} "
                f"{self.shape}; the dtype and shape must be the same"
            )
        np.copyto(target, source)

    def __getitem__(self, index: Any) -> Tensor:
        """The elements at `index` (numpy's indexing), sharing memory where numpy's view
        does; ints alone give a rank-0 tensor. An XLA result on a CPU device becomes host
        memory first (see `_host`), so views of it write through too."""
        items = index if isinstance(index, tuple) else (index,)
        if not self.device.is_host:  # an accelerator's array: JAX's indexing
            return Tensor._of(self._array[items], self.device)
        array = self._host("indexing")
        if not any(item is Ellipsis for item in items):
            items = (*items, Ellipsis)  # numpy then gives a rank-0 view, not a scalar
        return Tensor._of(array[items], self.device)

    def __setitem__(self, index: Any, value: Any) -> None:
        """Write `value` (a number, array or tensor) at `index`, in place.

        Raises:
            ValueError: a read-only tensor (a model's shared result), or a device's tensor.
        """
        value = value.to_numpy() if isinstance(value, Tensor) else value
        array = self._host("item assignment")
        if not array.flags.writeable:
            raise ValueError(
                "item assignment: this result is read-only (a model's result that several "
                "devices share); write to a copy (.copy())"
            )
        array[index] = value

    def _host(self, what: str) -> np.ndarray:
        """The host memory to write or view: an XLA result on a CPU device (an immutable JAX
        array) becomes a numpy copy this tensor holds from then on.

        Raises:
            ValueError: the tensor is on an accelerator.
        """
        array = self._array
        if isinstance(array, np.ndarray):
            return array
        if not self.device.is_host:
            raise ValueError(
                f"{what}: the tensor is on {self.device}, an accelerator; bring it to the "
                "host first (.to(CPU()))"
            )
        self._array = np.array(array)
        return self._array

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        array = self.to_numpy()
        if copy:
            return np.array(array, dtype=dtype)
        if dtype is None or np.dtype(dtype) == array.dtype:
            return array
        if copy is False:
            raise ValueError(
                f"a {self.dtype!r} Tensor cannot become {np.dtype(dtype)} without a copy"
            )
        return array.astype(dtype)

    def __dlpack__(self, *, stream: Any = None, **kwargs: Any) -> Any:
        """Exports the memory without a copy; bfloat16 and float8 travel with their own DLPack
        type codes, which numpy's exporter lacks."""
        if not isinstance(self._array, np.ndarray):
            return self._array.__dlpack__(stream=stream, **kwargs)
        dtype = self.dtype
        if dtype in NARROW_FLOAT_CODES:
            return to_dlpack_capsule(self._array, dtype, **kwargs)
        return self._array.__dlpack__(stream=stream, **kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        if not isinstance(self._array, np.ndarray):
            return self._array.__dlpack_device__()
        return (DLPACK_CPU, 0)

    def __repr__(self) -> str:
        return f"Tensor(shape={self.shape}, dtype={self.dtype!r}, device={self.device})"


Buffer = Tensor


def _fits(value: Any, dtype: np.dtype) -> bool:
    """Whether `value` is a number that `dtype` (an integer or bool type) holds exactly."""
    if isinstance(value, numbers.Integral | np.bool_):  # exact, however large
        whole = int(value)
    else:
        try:
            number = complex(value)
        except (TypeError, ValueError):
            return False
        if number.imag or not math.isfinite(number.real) or number.real != int(number.real):
            return False
        whole = int(number.real)
    if dtype.kind == "b":
        return whole in (0, 1)
    info = np.iinfo(dtype)
    return info.min <= whole <= info.max
