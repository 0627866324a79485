"""Ember: embedding lookups as graphs, compiled once and run at memory bandwidth.

Subpackages load on first use (`ember.quant`, `ember.engine`, ...), so `import ember` stays
cheap while `ember.quant.FORMATS` works without its own import.
"""

import importlib
from types import ModuleType

__all__ = ["cli", "dlpack", "driver", "dtype", "engine", "graph", "nn", "quant"]
__version__ = "0.1.0"


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
