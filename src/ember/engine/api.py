"""MAX's `max.engine.api`, where MAX's own code imports its session from: the same names as
`ember.engine`."""

from .model import Model
from .session import InferenceSession

__all__ = ["InferenceSession", "Model"]
