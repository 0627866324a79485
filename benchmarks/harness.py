"""The timing harness every benchmark script shares.

Contenders run in one process and take turns (A, B, C, A, B, C, ...), so load that drifts
during a run hits all of them alike; each turn is one sample of seconds per call, and a
script reports medians and ratios taken within one run. The machine's load
is noted beside the results, and ``recorded`` keeps a copy of what a script prints in
``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import itertools
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Slot:
    """One contender's turn in a round: ``run()`` returns seconds per call; ``cost`` its length."""

    run: Callable[[], float]
    cost: float


def cycling(call: Callable, pool: list) -> Callable[[], object]:
    """A call that applies ``call`` to the next item of ``pool`` each time, starting at pool[0]."""
    items = itertools.cycle(pool)
    return lambda: call(next(items))


def time_calls(call: Callable[[], object], inner: int) -> float:
    """Seconds per call of ``inner`` back-to-back calls (each result dropped before the next)."""
    start = time.perf_counter()
    for _ in range(inner):
        call()
    return (time.perf_counter() - start) / inner


def timed_slot(call: Callable[[], object], target: float = 1e-3) -> Slot:
    """A turn of enough back-to-back calls to last about ``target`` seconds.

    Each call's result is dropped before the next call starts (ember's results go back to a
    buffer pool).
    """
    est = min(time_calls(call, 1) for _ in range(3))
    inner = int(min(1000, max(1, target / max(est, 1e-9))))
    return Slot(lambda: time_calls(call, inner), est * inner)


def fixed_slot(call: Callable[[], object], calls: int = 1, primed: bool = False) -> Slot:
    """A turn of exactly ``calls`` back-to-back calls (its cost is not estimated).

    ``primed``: one untimed call first, so the turn does not pay for the cache state another
    contender left.
    """

    def run() -> float:
        if primed:
            call()
        return time_calls(call, calls)

    return Slot(run, 0.0)


def interleave(
    slots: dict[str, Slot],
    rounds: int,
    warmup: int = 0,
    shuffle: np.random.Generator | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each slot's turns, taking turns A, B, C, A, B, C, ... .

    ``warmup`` rounds run first and are dropped; with ``shuffle``, each round takes its turns
    in a random order. A 1 ms pause between turns lets runtimes whose idle worker threads spin
    (OpenMP) park them before the next contender starts.
    """
    samples: dict[str, list[float]] = {name: [] for name in slots}
    for round_ in range(warmup + rounds):
        order = list(slots) if shuffle is None else shuffle.permutation(list(slots))
        for name in order:
            slot = slots[name]
            seconds = slot.run()
            if round_ >= warmup:
                samples[name].append(seconds)
            time.sleep(1e-3)
    return samples


def round_robin(slots: dict[str, Slot], budget: float, min_rounds: int) -> dict[str, float]:
    """Median seconds per call of each slot, over as many rounds as fit ``budget`` seconds
    (at least ``min_rounds``, at most 200)."""
    per_round = sum(s.cost for s in slots.values()) + 1e-3 * len(slots)
    rounds = int(min(200, max(min_rounds, budget / max(per_round, 1e-9))))
    return medians(interleave(slots, rounds))


def medians(samples: dict[str, list[float]]) -> dict[str, float]:
    """The median of each contender's samples."""
    return {name: float(np.median(v)) for name, v in samples.items()}


def ratio(mine: float | None, theirs: float | None) -> str:
    """``mine / theirs`` to two places, or '—' where either is missing."""
    return f"{mine / theirs:.2f}" if mine and theirs else "—"


def machine_note() -> str:
    """CPUs and load average now, with the caveat every report carries."""
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs, load average {load} (1/5/15 min) at start. The machine is "
        "shared and noisy: compare ratios taken within this run."
    )


def versions(packages: tuple[str, ...] = ("numpy", "numba", "torch", "max", "ember")) -> str:
    """Versions of those ``packages`` that are installed."""
    found = []
    for package in packages:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found.append(f"{package} {importlib.metadata.version(package)}")
    return ", ".join(found)


def first_line(exc: BaseException) -> str:
    """``Type: message`` of an exception, first line only."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def add_save_option(parser: argparse.ArgumentParser, name: str) -> None:
    """``--save``: keep a copy of the printed report in ``results/<name>.txt``."""
    parser.add_argument(
        "--save",
        action="store_const",
        const=RESULTS / f"{name}.txt",
        help=f"also write what is printed to benchmarks/results/{name}.txt",
    )


class _Tee:
    """A text stream writing to the console and a file."""

    def __init__(self, console, file):
        self.console, self.file = console, file

    def write(self, text: str) -> int:
        self.file.write(text)
        return self.console.write(text)

    def flush(self) -> None:
        self.file.flush()
        self.console.flush()


@contextlib.contextmanager
def recorded(path: Path | None) -> Iterator[None]:
    """Copies what is printed inside to ``path`` (nothing is copied when it is None)."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as file, contextlib.redirect_stdout(_Tee(sys.stdout, file)):
        yield
    print(f"wrote {path}")
