"""A tensor's shape: a list of `Dim`s.

>>> Shape([4, "seq", 256])
[Dim(4), Dim('seq'), Dim(256)]
>>> Shape([2, 3]).static_size
6
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .dim import Dim, DimLike, StaticDim
from .errors import GraphTypeError

__all__ = ["Shape", "ShapeLike"]


class Shape(list):
    """A list of dims printed as MAX prints it, `[Dim(4), Dim(16), Dim(256)]`."""

    def __init__(self, dims: Iterable[DimLike] = ()) -> None:
        if isinstance(dims, str | bytes):
            raise GraphTypeError(f"a shape is a sequence of dims, not {dims!r}")
        try:
            items = list(dims)
        except TypeError as exc:
            raise GraphTypeError(f"a shape is a sequence of dims, not {dims!r}") from exc
        super().__init__(Dim(d) for d in items)

    @property
    def rank(self) -> int:
        return len(self)

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, StaticDim) for d in self)

    @property
    def static_size(self) -> int:
        """The element count of a fully static shape."""
        if not self.is_static:
            raise ValueError(f"shape {self} has symbolic dims; its size is known only at run time")
        size = 1
        for d in self:
            size *= int(d)
        return size

    @property
    def static_dims(self) -> list[int]:
        """The static dims, in order, as ints (symbolic and algebraic ones left out)."""
        return [int(d) for d in self if isinstance(d, StaticDim)]

    def symbols(self) -> set[str]:
        return set().union(*(d.symbols() for d in self)) if self else set()

    def evaluate(self, bindings: Mapping[str, int]) -> tuple[int, ...]:
        """Each dim's size under `bindings` (an execution's).

        Raises:
            ValueError: a dim is negative there (`n - 2` with `n` bound to 1).
        """
        sizes = tuple(d.evaluate(bindings) for d in self)
        if sizes and min(sizes) < 0:
            at = next(i for i, size in enumerate(sizes) if size < 0)
            raise ValueError(
                f"shape {self}: dim {self[at]} is {sizes[at]} at this execution; a size is "
                "never negative"
            )
        return sizes

    def __repr__(self) -> str:
        return "[" + ", ".join(repr(d) for d in self) + "]"

    __str__ = __repr__


ShapeLike = Iterable[DimLike]
