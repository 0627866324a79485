"""What the embedding benchmark times: a contender and how contenders are built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from harness import first_line

EMBER_MISSING = "ember engine not available"


@dataclass
class Contender:
    """A way to look rows up: ``bind(pool)`` returns a call looking up the pool's next id set.

    ``check(ids, out)`` returns '' when ``out`` (of the first set, ``ids``) is right, else what
    is wrong.
    """

    name: str
    bind: Callable[[np.ndarray], Callable[[], object]]
    to_numpy: Callable[[object], np.ndarray] = np.asarray
    check: Callable[[np.ndarray, np.ndarray], str] | None = None


def build(
    makers: dict[str, Callable[[], list[Contender]]],
) -> tuple[list[Contender], dict[str, str]]:
    """Builds the contenders; a missing package is printed, any other failure kept as a note."""
    built, failed = [], {}
    for name, make in makers.items():
        try:
            built += make()
        except ImportError as exc:
            print(EMBER_MISSING if name.startswith("ember") else f"{name}: {exc}", flush=True)
        except Exception as exc:
            failed[name] = first_line(exc)
    return built, failed
