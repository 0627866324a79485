"""Layer hooks that come with ember (MAX's `max.nn.hooks`)."""

from .print_hook import PrintHook

__all__ = ["PrintHook"]
