"""The `ember` command: the demo executes the seed example; bad arguments are usage errors."""

import pytest

from ember.cli import main


def test_demo_executes_the_seed_example(capsys):
    assert main(["demo", "--repeats", "3"]) == 0
    out = capsys.readouterr().out
    assert "Embedding output shape: [Dim(4), Dim(16), Dim(256)]" in out
    assert "matches numpy: True" in out


@pytest.mark.parametrize("args", [["--repeats", "0"], ["--threads", "0"], ["--threads", "999"]])
def test_bad_arguments_are_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", *args])
    assert exit_info.value.code == 2
    assert "error: argument" in capsys.readouterr().err
