"""The native backend: numpy and numba kernels on the host CPU."""

from .backend import NativeBackend

__all__ = ["NativeBackend"]
