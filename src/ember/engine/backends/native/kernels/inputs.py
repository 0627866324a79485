"""Kernel inputs typed as writeable arrays, read-only or not.

numba compiles a separate kernel for a read-only array (a memory-mapped table opened "r", ids
from a frozen buffer): seconds of compile on first use, in the middle of an `execute`. The
kernels never write their inputs, so they receive read-only arrays through a view that numba
types as writeable, and one compiled kernel serves both.

>>> frozen = np.arange(4)
>>> frozen.flags.writeable = False
>>> view = as_kernel_input(frozen)
>>> view.flags.writeable, np.shares_memory(view, frozen)
(True, True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_kernel_input"]


class _Borrowed:
    """Exposes another array's memory through the array interface, keeping that array alive."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        interface = dict(array.__array_interface__)
        interface["data"] = (interface["data"][0], False)
        self.__array_interface__ = interface


def as_kernel_input(array: np.ndarray) -> np.ndarray:
    """`array` itself when writeable, else a writeable-typed view of the same memory that the
    kernels only read."""
    if array.flags.writeable:
        return array
    return np.asarray(_Borrowed(array))
