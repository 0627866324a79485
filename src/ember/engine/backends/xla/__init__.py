"""The XLA backend: JAX for CPU, GPU and TPU devices (`pip install "ember[xla]"`)."""

from .backend import XlaBackend

__all__ = ["XlaBackend"]
