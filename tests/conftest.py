"""Shared fixtures. Tests that need reference material read it from ``../shared`` (beside the checkout) or from
``$ESRKIT_SHARED``, and skip with a reason when it is absent: a user's fresh clone has no ``../shared``.

Plain helpers (``shared_path``, ``randomize_weights``, ``REPO``, ``SHARED``) are in ``helpers.py``; test modules
import them from there, never from this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import shared_path


@pytest.fixture
def shared() -> Path:
    """Root of the shared reference folder (skips when absent)."""
    return shared_path()


@pytest.fixture(autouse=True)
def _weights_cache_isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the user's weights cache or reaches the network: ``XDG_CACHE_HOME`` is a fresh folder and
    ``ESRKIT_OFFLINE=1`` (tests of downloads undo it and serve files from their own loopback server)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    monkeypatch.setenv("ESRKIT_OFFLINE", "1")
    monkeypatch.delenv("ESRKIT_WEIGHTS_MIRROR", raising=False)
