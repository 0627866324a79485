"""Dimensions of a tensor's shape: static sizes, named symbols, and expressions of them.

>>> Dim(4), Dim("batch")
(Dim(4), Dim('batch'))
>>> Dim("batch") * Dim("seq")
Dim(batch * seq)
>>> Dim(3) * 4
Dim(12)
"""

from __future__ import annotations

import numbers
import operator
import re
from collections.abc import Mapping

__all__ = ["AlgebraicDim", "Dim", "DimLike", "StaticDim", "SymbolicDim"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _DimFactory(type):
    """Calling `Dim(x)` itself picks the concrete kind; subclasses construct as usual."""

    def __call__(cls, *args: object) -> Dim:
        if cls is not Dim:
            return super().__call__(*args)
        (value,) = args
        if isinstance(value, Dim):
            return value
        if isinstance(value, str):
            return SymbolicDim(value)
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return StaticDim(int(value))
        raise TypeError(f"a Dim is an int or a str name, not {value!r} ({type(value).__name__})")


class Dim(metaclass=_DimFactory):
    """One dimension: `Dim(4)` builds a `StaticDim`, `Dim("batch")` a `SymbolicDim`."""

    def evaluate(self, bindings: Mapping[str, int]) -> int:
        """The size this dim takes once its symbols are bound."""
        raise NotImplementedError

    def symbols(self) -> set[str]:
        return set()

    def _arith(self, other: DimLike, op: str, reverse: bool = False) -> Dim:
        lhs, rhs = (Dim(other), self) if reverse else (self, Dim(other))
        if isinstance(lhs, StaticDim) and isinstance(rhs, StaticDim):
            return StaticDim(_apply(op, lhs.dim, rhs.dim))
        return AlgebraicDim(op, lhs, rhs)

    def __add__(self, other: DimLike) -> Dim:
        return self._arith(other, "+")

    def __radd__(self, other: DimLike) -> Dim:
        return self._arith(other, "+", reverse=True)

    def __sub__(self, other: DimLike) -> Dim:
        return self._arith(other, "-")

    def __rsub__(self, other: DimLike) -> Dim:
        return self._arith(other, "-", reverse=True)

    def __mul__(self, other: DimLike) -> Dim:
        return self._arith(other, "*")

    def __rmul__(self, other: DimLike) -> Dim:
        return self._arith(other, "*", reverse=True)

    def __floordiv__(self, other: DimLike) -> Dim:
        return self._arith(other, "//")

    def __rfloordiv__(self, other: DimLike) -> Dim:
        return self._arith(other, "//", reverse=True)


class StaticDim(Dim):
    """A size known when the graph is built."""

    def __init__(self, dim: int) -> None:
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            raise TypeError(f"a static dim is an int, not {dim!r}")
        if dim < 0:
            raise ValueError(f"dimensions are >= 0, got {dim}")
        self.dim = int(dim)

    def evaluate(self, bindings: Mapping[str, int]) -> int:
        return self.dim

    def __int__(self) -> int:
        return self.dim

    def __index__(self) -> int:
        return self.dim

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StaticDim):
            return self.dim == other.dim
        if isinstance(other, numbers.Integral) and not isinstance(other, bool):
            return self.dim == int(other)
        return False

    def __hash__(self) -> int:
        return hash(self.dim)

    def __repr__(self) -> str:
        return f"Dim({self.dim})"

    def __str__(self) -> str:
        return str(self.dim)


class SymbolicDim(Dim):
    """A size named in the graph and bound when the model executes."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"a symbolic dim's name is an identifier, got {name!r}")
        self.name = name

    def evaluate(self, bindings: Mapping[str, int]) -> int:
        return bindings[self.name]

    def symbols(self) -> set[str]:
        return {self.name}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SymbolicDim):
            return self.name == other.name
        if isinstance(other, str):
            return self.name == other
        return False

    def __hash__(self) -> int:
        return hash(("sym", self.name))

    def __repr__(self) -> str:
        return f"Dim({self.name!r})"

    def __str__(self) -> str:
        return self.name


class AlgebraicDim(Dim):
    """An expression of other dims, such as `batch * seq`, evaluated at execution."""

    def __init__(self, op: str, lhs: Dim, rhs: Dim) -> None:
        self.op, self.lhs, self.rhs = op, lhs, rhs

    def evaluate(self, bindings: Mapping[str, int]) -> int:
        return _apply(self.op, self.lhs.evaluate(bindings), self.rhs.evaluate(bindings))

    def symbols(self) -> set[str]:
        return self.lhs.symbols() | self.rhs.symbols()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AlgebraicDim) and (self.op, self.lhs, self.rhs) == (
            other.op,
            other.lhs,
            other.rhs,
        )

    def __hash__(self) -> int:
        return hash((self.op, self.lhs, self.rhs))

    def __str__(self) -> str:
        def term(dim: Dim) -> str:
            return f"({dim})" if isinstance(dim, AlgebraicDim) else str(dim)

        return f"{term(self.lhs)} {self.op} {term(self.rhs)}"

    def __repr__(self) -> str:
        return f"Dim({self})"


DimLike = int | str | Dim

_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv}


def _apply(op: str, a: int, b: int) -> int:
    if op == "//" and b == 0:
        raise ZeroDivisionError("dim division by zero")
    return _OPS[op](a, b)
