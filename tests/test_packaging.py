"""ember installs as the README says, from a checkout (`pip install .`) and from a built wheel:
every module of the source tree is in the installed package, the `ember` command is there, and
`import ember` finds the installed copy, not the checkout."""

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SOURCE_MODULES = sorted(
    p.relative_to(ROOT / "src").as_posix() for p in (ROOT / "src" / "ember").rglob("*.py")
)
PROBE = """
import pathlib
import ember, ember.cli, ember.engine, ember.nn, ember.weights
root = pathlib.Path(ember.__file__).parent
print(root)
print("\\n".join(sorted("ember/" + p.relative_to(root).as_posix() for p in root.rglob("*.py"))))
"""


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A copy of what a clone holds to build from: no caches, no build leftovers in the tree."""
    copy = tmp_path_factory.mktemp("checkout")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.nbi", "*.nbc")
    shutil.copytree(ROOT / "src", copy / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    return copy


def pip(*args, cwd=None):
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def installed(target, tmp_path):
    """Install `target` (a wheel or a checkout) into a fresh venv without its dependencies;
    the probe borrows those from this environment's site-packages through PYTHONPATH, whose
    .pth files (the checkout's editable install) Python does not read from there."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    pip("--python", str(python), "install", "--no-deps", "-q", str(target))
    borrowed = os.pathsep.join(p for p in sys.path if p.endswith("site-packages"))
    env = {**os.environ, "PYTHONPATH": borrowed}
    probe = subprocess.run(
        [str(python), "-c", PROBE], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert probe.returncode == 0, probe.stderr
    root, *modules = probe.stdout.splitlines()
    assert Path(root).is_relative_to(env_dir), f"imported {root}, not the installed copy"
    assert modules == SOURCE_MODULES
    command = subprocess.run(
        [str(env_dir / "bin" / "ember"), "--help"], capture_output=True, text=True, env=env
    )
    assert command.returncode == 0 and "quantize" in command.stdout, command.stderr


def test_pip_install_from_a_checkout(checkout, tmp_path):
    installed(checkout, tmp_path)


def test_a_built_wheel_installs(checkout, tmp_path):
    pip("wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(checkout), cwd=tmp_path)
    [wheel] = (tmp_path / "dist").glob("ember-*.whl")
    installed(wheel, tmp_path)
