"""`ember bench`: the side-by-side lookup benchmark of the source tree's `benchmarks/`."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

__all__ = ["bench"]


def bench(args: argparse.Namespace) -> int:
    from . import UsageError

    script = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_embedding.py"
    if not script.exists():
        raise UsageError("the benchmarks ship with ember's source tree; run from a checkout")
    extra = ["--quick"] if args.quick else []
    return subprocess.call([sys.executable, str(script), *extra, *args.args])
