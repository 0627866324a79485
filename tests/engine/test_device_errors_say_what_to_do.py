"""Asking for more devices than there are is one clear error: a CPU device XLA lacks names the
flag that makes more, and `ember embed --devices` above the table's rows stops at once."""

from __future__ import annotations

import numpy as np
import pytest

from ember.cli import main
from ember.driver import CPU
from ember.engine import InferenceSession


def test_a_missing_xla_cpu_device_names_the_flag():
    pytest.importorskip("jax")
    with pytest.raises(ValueError, match="cpu:64 is not a device") as error:
        InferenceSession(devices=[CPU(0), CPU(64)], backend="xla")
    assert "XLA_FLAGS=--xla_force_host_platform_device_count=N" in str(error.value)


def test_embed_with_more_devices_than_rows_is_an_error(tmp_path, capsys):
    safetensors = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "model.safetensors"
    safetensors.save_file({"embed_tokens.weight": np.ones((10, 4), np.float32)}, str(path))
    assert main(["embed", str(path), "--ids", "1,2", "--devices", "11"]) == 1
    err = capsys.readouterr().err
    assert "--devices 11 is more than the 10 rows of embed_tokens.weight" in err
    assert main(["embed", str(path), "--ids", "1,2", "--devices", "10"]) == 0
