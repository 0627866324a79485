"""`ember launch`: the local processes of a job of several (see `ember.distributed`)."""

from __future__ import annotations

import argparse
import importlib.util

__all__ = ["launch"]


def launch(args: argparse.Namespace) -> int:
    from ember.distributed import launch as start

    from . import UsageError

    if importlib.util.find_spec("jax") is None:  # said once here, not by every process
        raise UsageError(
            "a job of several processes runs on jax.distributed, and jax is not installed: "
            "pip install 'ember[xla]'"
        )
    return start(
        args.script,
        args.n,
        coordinator=args.coordinator,
        num_processes=args.num_processes,
        first_id=args.first_id,
        local_cpu_devices=args.cpu_devices,
    )
