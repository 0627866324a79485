"""What `ops.print` writes when a model runs, set per session by
`InferenceSession.set_debug_print_options` (MAX's styles):

- ``"COMPACT"`` (the default): ``label = tensor([[v0, v1, v2, ..., vn]], dtype=f32,
  shape=[20])``, four decimals, the first and last three values of a larger tensor;
- ``"FULL"``: every value, in scientific notation with ``precision`` digits:
  ``label = tensor<20xf32> [1.123457e+00, ...]``;
- ``"NONE"``: nothing;
- ``"BINARY"``: the tensor's bytes, C order, into the file ``label`` of ``output_directory``.

A string is printed as it is in every style but NONE.

>>> options = DebugPrintOptions()
>>> options.line("x", np.full(8, 1.1234567, np.float32))
'x = tensor([[1.1235, 1.1235, 1.1235, ..., 1.1235, 1.1235, 1.1235]], dtype=f32, shape=[8])'
>>> options.set("FULL", precision=2)
>>> options.line("x", np.array([1, 2], np.int32))
'x = tensor<2xsi32> [1, 2]'
"""

from __future__ import annotations

import builtins
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ember.dtype import DType

__all__ = ["STYLES", "DebugPrintOptions"]

STYLES = ("COMPACT", "FULL", "NONE", "BINARY", "BINARY_MAX_CHECKPOINT")

_EDGE = 3
"""Values shown at each end of a larger tensor in the compact style."""


@dataclass
class DebugPrintOptions:
    style: str = "COMPACT"
    precision: int = 6
    output_directory: Path | None = None

    def set(
        self,
        style: str = "COMPACT",
        precision: int = 6,
        output_directory: str | os.PathLike | None = None,
    ) -> None:
        """Raises:
        TypeError: an unknown style, or a precision that is not an int.
        ValueError: a negative precision; ``"BINARY"`` without an existing directory.
        NotImplementedError: ``"BINARY_MAX_CHECKPOINT"`` (MAX's own checkpoint files).
        """
        if style not in STYLES:
            raise TypeError(f"Invalid debug print style {style!r}; one of {STYLES}")
        if isinstance(precision, bool) or not isinstance(precision, int):
            raise TypeError(f"precision must be an int, got {precision!r}")
        if precision < 0:
            raise ValueError(f"precision must be at least 0, got {precision}")
        if style == "BINARY_MAX_CHECKPOINT":
            raise NotImplementedError(
                "BINARY_MAX_CHECKPOINT writes MAX's own checkpoint format; use BINARY (the "
                "raw bytes, read back with numpy.fromfile)"
            )
        directory = None if output_directory is None else str(output_directory)
        if style == "BINARY" and not directory:
            raise ValueError("BINARY: the output directory cannot be empty")
        if style == "BINARY" and not Path(directory).is_dir():
            raise ValueError(f"BINARY: the output directory {directory!r} is not a directory")
        self.style, self.precision = style, precision
        self.output_directory = Path(directory) if directory else None

    def emit(self, label: str, value: np.ndarray | str) -> None:
        """Print or write ``value`` (a tensor's array, or a string) as the style says."""
        if self.style == "NONE":
            return
        if isinstance(value, str):
            builtins.print(value, flush=True)
        elif self.style == "BINARY":
            assert self.output_directory is not None
            np.ascontiguousarray(value).tofile(self.output_directory / label)
        else:
            builtins.print(self.line(label, value), flush=True)

    def line(self, label: str, array: np.ndarray) -> str:
        short, floats = _short_dtype(array.dtype), _is_float(array.dtype)
        flat = array.reshape(-1)
        if self.style == "FULL":
            dims = "".join(f"{n}x" for n in array.shape)
            text = ", ".join(f"{float(x):.{self.precision}e}" if floats else str(x) for x in flat)
            return f"{label} = tensor<{dims}{short}> [{text}]"

        def compact(x: np.generic) -> str:
            return f"{float(x):.4f}" if floats else str(x)

        if flat.size > 2 * _EDGE:
            shown = [*map(compact, flat[:_EDGE]), "...", *map(compact, flat[-_EDGE:])]
        else:
            shown = [compact(x) for x in flat]
        return f"{label} = tensor([[{', '.join(shown)}]], dtype={short}, shape={list(array.shape)})"


def _is_float(dtype: np.dtype) -> bool:
    try:
        return DType.from_numpy(dtype).is_float()
    except TypeError:
        return False


def _short_dtype(dtype: np.dtype) -> str:
    """MAX's short names: f32, bf16, si32, ui8, bool."""
    try:
        name = DType.from_numpy(dtype).name
    except TypeError:
        return str(dtype)
    if name.startswith("float"):
        return f"f{name[5:]}"
    if name.startswith("bfloat"):
        return f"bf{name[6:]}"
    if name.startswith("uint"):
        return f"ui{name[4:]}"
    if name.startswith("int"):
        return f"si{name[3:]}"
    return name
