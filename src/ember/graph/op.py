"""`Op`: the symbol of one graph operation. A node carries its op's symbol, and each backend
registers one lowering per symbol (as JAX registers lowerings against its primitives), so a
backend's coverage is a set of symbols that a test can check against `all_ops()`.

An op's traits are facts about what it means, declared once on its symbol, that every backend
reads (rather than each keeping its own list of the ops that have them).

>>> from ember.graph.ops.gather import GATHER
>>> GATHER, GATHER.name, GATHER in all_ops()
(Op('gather'), 'gather', True)
>>> GATHER.lookup, GATHER.may_alias, GATHER.cross_device
(True, False, False)
"""

from __future__ import annotations

__all__ = ["Op", "all_ops"]

_REGISTERED: dict[str, Op] = {}


class Op:
    """One operation's symbol, and its traits:

    - `source`: the op gives a node its value from outside the graph (inputs, constants,
      weights), so backends bind rather than lower it.
    - `lookup`: the op reads rows of a table by id. It runs at every execute even when its
      inputs are all known at load, and a backend may fuse a dequantize of its rows into it.
    - `may_alias`: the op's result may be its input's memory (the input itself, or a view of
      it), so a backend copies such a result before a caller gets it.
    - `cross_device`: the op moves values between devices.
    - `effect`: the op acts outside the graph (it prints), so it runs at every execute though
      no output reads it, and is never folded at load.
    """

    __slots__ = ("cross_device", "effect", "lookup", "may_alias", "name", "source")

    def __init__(
        self,
        name: str,
        *,
        source: bool = False,
        lookup: bool = False,
        may_alias: bool = False,
        cross_device: bool = False,
        effect: bool = False,
    ) -> None:
        if name in _REGISTERED:
            raise ValueError(f"an op named {name!r} is already defined")
        self.name = name
        self.source = source
        self.lookup = lookup
        self.may_alias = may_alias
        self.cross_device = cross_device
        self.effect = effect
        _REGISTERED[name] = self

    def __repr__(self) -> str:
        return f"Op({self.name!r})"

    def __str__(self) -> str:
        return self.name


def all_ops() -> list[Op]:
    """Every op symbol defined so far (importing `ember.graph` defines them all)."""
    return list(_REGISTERED.values())
