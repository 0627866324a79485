"""The error of a value of the wrong kind while a graph is built.

>>> issubclass(GraphTypeError, TypeError) and issubclass(GraphTypeError, ValueError)
True
"""

from __future__ import annotations

__all__ = ["GraphTypeError"]


class GraphTypeError(TypeError, ValueError):
    """A dim, dtype or shape of the wrong kind: a `TypeError` where MAX raises one, and a
    `ValueError` where MAX raises that, so code ported from MAX catches it either way."""
