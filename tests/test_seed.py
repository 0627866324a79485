"""The seed document's example, with `max` replaced by `ember`, runs as written."""

import pathlib
import subprocess
import sys

SEED = pathlib.Path(__file__).with_name("seed_example.py")


def test_seed_example_prints_the_documented_shape():
    run = subprocess.run([sys.executable, str(SEED)], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "Embedding output shape: [Dim(4), Dim(16), Dim(256)]"
