"""`Op`: the symbol of one graph operation. A node carries its op's symbol, and each backend
registers one lowering per symbol (as JAX registers lowerings against its primitives), so a
backend's coverage is a set of symbols that a test can check against `all_ops()`.

>>> from ember.graph.ops.gather import GATHER
>>> GATHER, GATHER.name, GATHER in all_ops()
(Op('gather'), 'gather', True)
"""

from __future__ import annotations

__all__ = ["Op", "all_ops"]

_REGISTERED: dict[str, Op] = {}


class Op:
    """One operation's symbol; `source` ops (inputs, constants, weights) give a node its value
    from outside the graph, so backends bind rather than lower them."""

    __slots__ = ("name", "source")

    def __init__(self, name: str, *, source: bool = False) -> None:
        if name in _REGISTERED:
            raise ValueError(f"an op named {name!r} is already defined")
        self.name = name
        self.source = source
        _REGISTERED[name] = self

    def __repr__(self) -> str:
        return f"Op({self.name!r})"

    def __str__(self) -> str:
        return self.name


def all_ops() -> list[Op]:
    """Every op symbol defined so far (importing `ember.graph` defines them all)."""
    return list(_REGISTERED.values())
