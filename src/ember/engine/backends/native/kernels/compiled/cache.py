"""`jit`: numba's ``njit`` with an on-disk cache that notices changes to what a kernel uses.

numba invalidates a cached function only when the function's own source file changes, yet a
kernel freezes in the globals it reads (tables from `ember.quant.grids`, the out-of-range codes)
and inlines the helpers it calls from sibling modules. Editing any of those would leave stale
kernels in every cache. Here every cached function's source stamp also covers the contents of
all those files, so that a change to any of them recompiles every kernel.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path

from numba import njit
from numba.core.caching import CompileResultCacheImpl, FunctionCache

import ember.quant.grids

from .. import out_of_range

__all__ = ["DEPENDENCIES", "dependency_stamp", "jit"]

DEPENDENCIES: tuple[Path, ...] = (
    *sorted(Path(__file__).parent.rglob("*.py")),
    Path(ember.quant.grids.__file__),
    Path(out_of_range.__file__),
)
"""Every source file whose contents compiled kernels depend on: this package (the kernels and
the helpers they inline) and the modules whose globals they freeze."""


@functools.cache
def dependency_stamp() -> str:
    """A digest of the contents of every file in `DEPENDENCIES`, once per process."""
    digest = hashlib.sha256()
    for path in DEPENDENCIES:
        digest.update(path.read_bytes())
    return digest.hexdigest()


class _DependencyStamped:
    """Mixed into numba's cache locators: the function's own file, and every dependency."""

    def get_source_stamp(self):
        return super().get_source_stamp(), dependency_stamp()


class _CacheImpl(CompileResultCacheImpl):
    _locator_classes = [  # noqa: RUF012 - numba's own attribute, a list there too
        type(f"DependencyStamped{locator.__name__}", (_DependencyStamped, locator), {})
        for locator in CompileResultCacheImpl._locator_classes
    ]


class _Cache(FunctionCache):
    _impl_class = _CacheImpl


def jit(**options) -> Callable[[Callable], Callable]:
    """``njit(**options)`` cached on disk under `dependency_stamp` (``cache`` is implied)."""

    def compile_later(function: Callable) -> Callable:
        dispatcher = njit(**options)(function)
        # What njit(cache=True) does, with the stamped cache instead of numba's FunctionCache.
        dispatcher._cache = _Cache(function)
        return dispatcher

    return compile_later
