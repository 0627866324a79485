"""numba's on-disk cache of the native kernels: used across processes, and invalidated when a
file a kernel depends on changes, not only the kernel's own file.

Each run is a fresh process on a copy of the package with its own ``NUMBA_CACHE_DIR``, so the
test edits nothing in the checkout and shares no cache with other runs.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import ember
from ember.engine.backends.native.kernels.compiled import cache

RUN = textwrap.dedent(
    """
    import json
    import numpy as np
    from ember.engine.backends.native.kernels.compiled.dequantize_kernels import kernels
    from ember.engine.backends.native.kernels.dequantize_gather import gather_dequantize
    from ember.quant import FORMATS

    fmt = FORMATS["iq4_nl"]
    table = np.zeros((1, fmt.block_bytes), np.uint8)
    table[0, :2] = np.array([1.0], "<f2").view(np.uint8)  # d = 1: the values are the levels
    table[0, 2:] = np.arange(16, dtype=np.uint8) * 17  # both nibbles of byte j are j
    out = np.empty((1, fmt.block_elements), np.float32)
    assert gather_dequantize("iq4_nl", table, np.array([0]), 0, 0, out, False) == -1
    hits = sum(kernels("iq4_nl")[True, False].stats.cache_hits.values())
    reference = fmt.dequantize(table)[0, :16].tolist()
    print(json.dumps({"kernel": out[0, :16].tolist(), "reference": reference, "hits": hits}))
    """
)


def _run(src: Path, cache_dir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "NUMBA_CACHE_DIR": str(cache_dir)}
    env["EMBER_COMPILE"] = "sync"
    done = subprocess.run(
        [sys.executable, "-c", RUN], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_changed_dependency_recompiles_the_kernels(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(
        Path(ember.__file__).parent, src / "ember", ignore=shutil.ignore_patterns("__pycache__")
    )
    first = _run(src, tmp_path / "cache")
    assert first["kernel"] == first["reference"] and first["hits"] == 0
    assert _run(src, tmp_path / "cache")["hits"] == 1  # the cache serves a second process

    grids = src / "ember" / "quant" / "grids.py"
    text = grids.read_text()
    assert "[-127, -104, -83," in text
    grids.write_text(text.replace("[-127, -104, -83,", "[-126, -104, -83,"))
    changed = _run(src, tmp_path / "cache")
    assert changed["reference"][0] == -126.0
    assert changed["kernel"] == changed["reference"]


def test_the_stamp_covers_every_module_the_compiled_code_imports():
    """A compiled module importing from a file outside `cache.DEPENDENCIES` could freeze its
    globals into a kernel without the stamp noticing a change there."""
    read_at_import = {"ember.quant"}  # the registry's names, which decide what is compiled
    stamped = {path.resolve() for path in cache.DEPENDENCIES}
    root = Path(ember.__file__).parent.parent
    for path in Path(cache.__file__).parent.rglob("*.py"):
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        package = module if path.stem == "__init__" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            name = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            if not name.startswith("ember.") or name in read_at_import:
                continue
            imported = importlib.import_module(name)
            values = [getattr(imported, alias.name) for alias in node.names]
            if all(inspect.ismodule(value) for value in values):
                files = {Path(value.__file__).resolve() for value in values}
            else:
                files = {Path(imported.__file__).resolve()}
            assert files <= stamped, f"{module} imports from {name}, outside the stamped files"
