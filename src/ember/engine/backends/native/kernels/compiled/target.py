"""The CPU numba compiles for: its features, as LLVM names them (``avx512f``, ``fma``...), from
the host, or from ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` where they name another target (a
named CPU without features: none assumed). Kernels choose their instructions and their
register tiles by it."""

from __future__ import annotations

import functools

from llvmlite import binding as llvm_binding
from numba.core import config


@functools.cache
def target_features() -> frozenset[str]:
    if config.CPU_FEATURES is not None:
        features = config.CPU_FEATURES
    elif config.CPU_NAME not in (None, "host"):
        return frozenset()
    else:
        features = llvm_binding.get_host_cpu_features().flatten()
    return frozenset(f[1:] for f in features.split(",") if f.startswith("+"))


def target_has(*names: str) -> bool:
    """Whether the target has every one of the features `names`."""
    return set(names) <= target_features()
