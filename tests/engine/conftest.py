"""Fixtures the engine's tests share."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def count_calls(monkeypatch) -> Callable[[type, str], list[int]]:
    """``count_calls(owner, name)``: a one-item list counting the calls of ``owner.name`` from
    now on (the method patched for the test)."""

    def patch(owner: type, name: str) -> list[int]:
        count = [0]
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            count[0] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)
        return count

    return patch
