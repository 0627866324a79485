"""The one interface every backend implements; the engine never asks which one it holds.

A backend knows which graph devices it can run on and compiles a graph, whose weights the
engine has already bound and checked, into an `Executable`: arrays in, arrays out. Everything
else (fusion, plans, buffer pools, jit caches) is the backend's own business.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from ember.driver import Device
from ember.engine.debug_print import DebugPrintOptions
from ember.graph import DeviceRef, Graph, Op

__all__ = ["Backend", "Executable", "FastPath", "FastStep"]


class FastPath(Protocol):
    """``fast_path(input, out)`` gives the output (``out`` itself when given), or None to
    decline. The engine has checked the input's dtype and its writeable C-contiguous layout
    and ``out``'s layout and overlaps; an input shape is only served once ``accept`` has
    been told the general path checked it."""

    def __call__(self, input: np.ndarray, out: np.ndarray | None) -> Any: ...

    def accept(self, shape: tuple[int, ...]) -> None: ...


class FastStep(Protocol):
    """``fast_step(inputs)`` gives the graph's one output, or None to decline. The engine has
    checked each input's dtype (the graph's: narrower integers were widened), rank and
    writeable C-contiguous layout; the fast step checks their dims against the graph's input
    types."""

    def __call__(self, inputs: Sequence[np.ndarray]) -> Any: ...


class Executable(ABC):
    """A compiled graph; `run` is called once per `execute` with checked inputs."""

    borrowed_outputs: frozenset[int] = frozenset()
    """Positions of outputs that may share memory with an input, a weight or a constant: the
    engine copies those before a caller sees them."""

    fast_path: FastPath | None = None
    """For a graph of one input and one output: a way around the general path's fixed costs
    for small calls."""

    fast_step: FastStep | None = None
    """For a graph of one output computed in one step (a bag, a collection of bags), where
    there is no `fast_path`: the same, for calls without ``out=``."""

    @abstractmethod
    def run(
        self,
        inputs: Sequence[Any],
        bindings: Mapping[str, int],
        targets: Sequence[np.ndarray | None] | None,
    ) -> list[Any]:
        """One array per output. `bindings` gives each symbolic dim's size; `targets` the
        caller's `out=` arrays (an output may be written straight into its target, or returned
        for the engine to copy there).

        Raises:
            OutOfRangeError: an id lies outside its table (per the lookup's policy).
        """


class Backend(ABC):
    """Runs graphs on some devices."""

    name: str
    lowerings: Mapping[Op, Any]
    """One lowering per op symbol this backend runs."""
    unsupported: Mapping[Op, str] = {}
    """Ops this backend declines, each with the reason."""

    @property
    @abstractmethod
    def devices(self) -> list[Device]:
        """The real devices this backend can place values on."""

    @abstractmethod
    def supports(self, device: DeviceRef) -> bool:
        """Whether a graph value may live on `device`."""

    @abstractmethod
    def compile(self, graph: Graph, weights: Mapping[str, np.ndarray]) -> Executable:
        """Compile the live part of `graph`; `weights` holds a checked array per weight it reads."""

    def accepts(self, value: Any) -> bool:
        """Whether `value` is one of this backend's own device arrays, passed to `run` as is."""
        return False

    @functools.cached_property
    def debug_print(self) -> DebugPrintOptions:
        """What `ops.print` writes in this backend's models, read each time one runs."""
        return DebugPrintOptions()
