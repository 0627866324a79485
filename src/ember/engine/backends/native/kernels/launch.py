"""One parallel kernel at a time in a process.

numba's workqueue threading layer (the one left where OpenMP and TBB are missing) aborts the
whole process when two Python threads launch parallel regions at once. Serializing the launches
costs little: the parallel kernels already use every core.
"""

from __future__ import annotations

import threading

__all__ = ["PARALLEL_LAUNCH"]

PARALLEL_LAUNCH = threading.Lock()
