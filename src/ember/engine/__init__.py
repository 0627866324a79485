"""Compiling graphs into models and running them."""

from .model import Model
from .session import InferenceSession

__all__ = ["InferenceSession", "Model"]
