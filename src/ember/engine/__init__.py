"""Compiling graphs into models and running them."""

from .kernels import wait_for_kernels
from .model import Model
from .session import InferenceSession

__all__ = ["InferenceSession", "Model", "wait_for_kernels"]
