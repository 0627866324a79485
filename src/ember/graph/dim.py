"""Dimensions of a tensor's shape: static sizes, named symbols, and expressions of them.

An expression is kept in one canonical form, a sum of products with integer coefficients, so
that equal expressions built in different ways compare equal and shapes built two ways match.

>>> Dim(4), Dim("batch")
(Dim(4), Dim('batch'))
>>> Dim("batch") * Dim("seq")
Dim(batch * seq)
>>> Dim(3) * 4
Dim(12)
>>> x = Dim("x")
>>> 4 * x + 4 == (x + 1) * 4, (x + 1) * 4
(True, Dim(4 * x + 4))
>>> (2 * x - x, x - x)
(Dim('x'), Dim(0))
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .errors import GraphTypeError

__all__ = ["AlgebraicDim", "Dim", "DimLike", "StaticDim", "SymbolicDim"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INT64 = range(-(2**63), 2**63)


class _DimFactory(type):
    """`Dim(x)` picks the concrete kind; `StaticDim(d)` given a `StaticDim` (and so on for each
    kind) returns that dim."""

    def __call__(cls, *args: object) -> Dim:
        if len(args) == 1 and isinstance(args[0], cls) and cls is not Dim:
            return args[0]
        if cls is not Dim:
            return super().__call__(*args)
        (value,) = args
        if isinstance(value, Dim):
            return value
        if isinstance(value, str):
            return SymbolicDim(value)
        if _is_int(value):
            return StaticDim(int(value))
        raise TypeError(f"a Dim is an int or a str name, not {value!r} ({type(value).__name__})")


class Dim(metaclass=_DimFactory):
    """One dimension: `Dim(4)` builds a `StaticDim`, `Dim("batch")` a `SymbolicDim`.

    `+ - * //` with another dim (or an int or a name) give a dim; with a graph value they give
    a graph value, as an int would.
    """

    __slots__ = ()

    def evaluate(self, bindings: Mapping[str, int]) -> int:
        """The size this dim takes once its symbols are bound."""
        return _evaluate(_poly(self), bindings)

    def symbols(self) -> set[str]:
        return {atom for monomial, _ in _poly(self) for atom in _atom_symbols(monomial)}

    @property
    def parameters(self) -> Iterable[SymbolicDim]:
        """The symbolic dims this dim depends on, as MAX lists them."""
        return [SymbolicDim(name) for name in sorted(self.symbols())]

    def __add__(self, other: DimLike) -> Dim:
        return _combine(self, other, _add) if _is_dim_like(other) else NotImplemented

    def __radd__(self, other: DimLike) -> Dim:
        return _combine(other, self, _add) if _is_dim_like(other) else NotImplemented

    def __sub__(self, other: DimLike) -> Dim:
        return _combine(self, other, _sub) if _is_dim_like(other) else NotImplemented

    def __rsub__(self, other: DimLike) -> Dim:
        return _combine(other, self, _sub) if _is_dim_like(other) else NotImplemented

    def __mul__(self, other: DimLike) -> Dim:
        return _combine(self, other, _mul) if _is_dim_like(other) else NotImplemented

    def __rmul__(self, other: DimLike) -> Dim:
        return _combine(other, self, _mul) if _is_dim_like(other) else NotImplemented

    def __floordiv__(self, other: DimLike) -> Dim:
        return _combine(self, other, _floordiv) if _is_dim_like(other) else NotImplemented

    def __rfloordiv__(self, other: DimLike) -> Dim:
        return _combine(other, self, _floordiv) if _is_dim_like(other) else NotImplemented

    def __neg__(self) -> Dim:
        return _to_dim(_mul(_poly(self), _constant(-1)))

    def __int__(self) -> int:
        raise TypeError(
            f"int({self!r}): conversions only supported for static dims; this one is symbolic"
        )

    def __repr__(self) -> str:
        return f"Dim({self})"


class StaticDim(Dim):
    """A size known when the graph is built: an int in [0, 2**63)."""

    __slots__ = ("dim",)

    def __init__(self, dim: int) -> None:
        if not _is_int(dim):
            raise GraphTypeError(f"a static dim is an int, not {dim!r} ({type(dim).__name__})")
        if int(dim) not in _INT64:
            raise ValueError(f"a static dim fits int64, [-2**63, 2**63); got {dim}")
        if dim < 0:
            raise GraphTypeError(f"dimensions must be non-negative (>= 0), got {dim}")
        self.dim = int(dim)

    def __int__(self) -> int:
        return self.dim

    def __index__(self) -> int:
        return self.dim

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StaticDim):
            return self.dim == other.dim
        return _is_int(other) and self.dim == int(other)

    def __hash__(self) -> int:
        return hash(self.dim)

    def __lt__(self, other: object) -> bool:
        size = _size(other)
        return NotImplemented if size is None else self.dim < size

    def __le__(self, other: object) -> bool:
        size = _size(other)
        return NotImplemented if size is None else self.dim <= size

    def __gt__(self, other: object) -> bool:
        size = _size(other)
        return NotImplemented if size is None else self.dim > size

    def __ge__(self, other: object) -> bool:
        size = _size(other)
        return NotImplemented if size is None else self.dim >= size

    def __repr__(self) -> str:
        return f"Dim({self.dim})"

    def __str__(self) -> str:
        return str(self.dim)


class SymbolicDim(Dim):
    """A size named in the graph and bound when the model executes."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str):
            raise GraphTypeError(
                f"a symbolic dim's name is a str, not {name!r} ({type(name).__name__})"
            )
        if not _NAME.match(name):
            raise ValueError(
                f"Invalid name for symbolic dimension: a name is an identifier, got {name!r}"
            )
        self.name = name

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SymbolicDim):
            return self.name == other.name
        return isinstance(other, str) and self.name == other

    def __hash__(self) -> int:
        return hash(("sym", self.name))

    def __repr__(self) -> str:
        return f"Dim({self.name!r})"

    def __str__(self) -> str:
        return self.name


class AlgebraicDim(Dim):
    """An expression of other dims, such as `batch * seq`, evaluated at execution. Build one
    with arithmetic on dims; `AlgebraicDim(existing)` returns `existing`."""

    __slots__ = ("_terms",)

    def __init__(self, dim: AlgebraicDim) -> None:
        raise GraphTypeError(
            f"AlgebraicDim takes an AlgebraicDim, not {dim!r} ({type(dim).__name__}); "
            "build one with arithmetic on dims, such as Dim('x') * 2"
        )

    @classmethod
    def _of(cls, terms: _Poly) -> AlgebraicDim:
        dim = object.__new__(cls)
        dim._terms = terms
        return dim

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AlgebraicDim) and self._terms == other._terms

    def __hash__(self) -> int:
        return hash(self._terms)

    def __str__(self) -> str:
        return _format(self._terms)


DimLike = int | str | Dim


# -- the canonical form: a polynomial over symbols and irreducible quotients ---------------------
#
# A polynomial is a sorted tuple of (monomial, coefficient) terms with no zero coefficient; a
# monomial is a sorted tuple of atoms (a symbol's name, or a `_Quotient`), the constant term's
# monomial being (). Sorting makes the form unique: equal polynomials are equal tuples.


@dataclass(frozen=True)
class _Quotient:
    """`numerator // denominator` where the division is not exact for every binding."""

    numerator: _Poly
    denominator: _Poly

    def __str__(self) -> str:
        return f"{_operand(self.numerator)} // {_operand(self.denominator)}"


_Atom = str | _Quotient
_Monomial = tuple[_Atom, ...]
_Poly = tuple[tuple[_Monomial, int], ...]


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_dim_like(value: object) -> bool:
    return isinstance(value, Dim | str) or _is_int(value)


def _size(other: object) -> int | None:
    if isinstance(other, StaticDim):
        return other.dim
    return int(other) if _is_int(other) else None


def _atom_key(atom: _Atom) -> tuple[int, str]:
    return (0, atom) if isinstance(atom, str) else (1, str(atom))


def _term_key(term: tuple[_Monomial, int]) -> tuple:
    monomial = term[0]
    return (not monomial, tuple(_atom_key(a) for a in monomial))


def _normalize(terms: Mapping[_Monomial, int]) -> _Poly:
    return tuple(sorted(((m, c) for m, c in terms.items() if c), key=_term_key))


def _constant(value: int) -> _Poly:
    return _normalize({(): value})


def _poly(dim: Dim) -> _Poly:
    if isinstance(dim, StaticDim):
        return _constant(dim.dim)
    if isinstance(dim, SymbolicDim):
        return (((dim.name,), 1),)
    return dim._terms  # type: ignore[attr-defined]


def _add(a: _Poly, b: _Poly) -> _Poly:
    terms = dict(a)
    for monomial, coefficient in b:
        terms[monomial] = terms.get(monomial, 0) + coefficient
    return _normalize(terms)


def _sub(a: _Poly, b: _Poly) -> _Poly:
    return _add(a, _mul(b, _constant(-1)))


def _mul(a: _Poly, b: _Poly) -> _Poly:
    terms: dict[_Monomial, int] = {}
    for ma, ca in a:
        for mb, cb in b:
            monomial = tuple(sorted(ma + mb, key=_atom_key))
            terms[monomial] = terms.get(monomial, 0) + ca * cb
    return _normalize(terms)


def _floordiv(a: _Poly, b: _Poly) -> _Poly:
    if not b:
        raise ZeroDivisionError("dim division by zero")
    if not a:
        return a
    if len(a) == 1 and len(b) == 1 and not a[0][0] and not b[0][0]:
        return _constant(a[0][1] // b[0][1])
    exact = _divide_exactly(a, b)
    if exact is not None:
        return exact
    return (((_Quotient(a, b),), 1),)


def _divide_exactly(a: _Poly, b: _Poly) -> _Poly | None:
    """`a // b` when `b` is one term dividing every term of `a`, so that the floor is exact."""
    if len(b) != 1:
        return None
    ((divisor, scale),) = b
    terms: dict[_Monomial, int] = {}
    for monomial, coefficient in a:
        rest = list(monomial)
        for atom in divisor:
            if atom not in rest:
                return None
            rest.remove(atom)
        if coefficient % scale:
            return None
        terms[tuple(rest)] = coefficient // scale
    return _normalize(terms)


def _combine(a: DimLike, b: DimLike, op: Callable[[_Poly, _Poly], _Poly]) -> Dim:
    """`op` on two dim-likes; an int is a term of its own, so `x * -1` and `x + -3` are fine
    where `Dim(-1)` is not."""
    return _to_dim(op(_term(a), _term(b)))


def _term(value: DimLike) -> _Poly:
    return _constant(int(value)) if _is_int(value) else _poly(Dim(value))


def _to_dim(terms: _Poly) -> Dim:
    if not terms:
        return StaticDim(0)
    if len(terms) == 1:
        ((monomial, coefficient),) = terms
        if not monomial:
            return StaticDim(coefficient)
        if coefficient == 1 and len(monomial) == 1 and isinstance(monomial[0], str):
            return SymbolicDim(monomial[0])
    return AlgebraicDim._of(terms)


def _atom_symbols(monomial: _Monomial) -> set[str]:
    names: set[str] = set()
    for atom in monomial:
        if isinstance(atom, str):
            names.add(atom)
        else:
            for part in (atom.numerator, atom.denominator):
                for inner, _ in part:
                    names |= _atom_symbols(inner)
    return names


def _evaluate(terms: _Poly, bindings: Mapping[str, int]) -> int:
    total = 0
    for monomial, coefficient in terms:
        product = coefficient
        for atom in monomial:
            if isinstance(atom, str):
                if atom not in bindings:
                    raise ValueError(
                        f"the symbolic dim {atom} has no size here: the graph's inputs bind "
                        "symbolic dims, and a rebind its new names on its own device"
                    )
                product *= bindings[atom]
            else:
                denominator = _evaluate(atom.denominator, bindings)
                if denominator == 0:
                    raise ZeroDivisionError(f"dim {atom} divides by zero")
                product *= _evaluate(atom.numerator, bindings) // denominator
        total += product
    return total


def _format(terms: _Poly) -> str:
    if not terms:
        return "0"
    text = ""
    for index, (monomial, coefficient) in enumerate(terms):
        alone = len(monomial) == 1 and abs(coefficient) == 1
        factors = [str(a) if alone else _factor(a) for a in monomial]
        if abs(coefficient) != 1 or not monomial:
            factors.insert(0, str(abs(coefficient)))
        term = " * ".join(factors)
        if index == 0:
            text = f"-{term}" if coefficient < 0 else term
        else:
            text += f" - {term}" if coefficient < 0 else f" + {term}"
    return text


def _factor(atom: _Atom) -> str:
    return atom if isinstance(atom, str) else f"({atom})"


def _operand(terms: _Poly) -> str:
    """A quotient's side: parenthesized unless it is one symbol or a constant >= 0."""
    text = _format(terms)
    if len(terms) == 1:
        monomial, coefficient = terms[0]
        symbol = len(monomial) == 1 and isinstance(monomial[0], str) and coefficient == 1
        if symbol or (not monomial and coefficient > 0):
            return text
    return text if not terms else f"({text})"
