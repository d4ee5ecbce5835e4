"""Shared fixtures. Tests that need reference material read it from ``../shared`` (beside the checkout) or from
``$ESRKIT_SHARED``, and skip with a reason when it is absent: a user's fresh clone has no ``../shared``.

Plain helpers (``shared_path``, ``randomize_weights``, ``REPO``, ``SHARED``) are in ``helpers.py``; test modules
import them from there, never from this file.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import shared_path

# The backends keep ONNX exports and compiled models in $XDG_CACHE_HOME/esrkit: the tests use a folder of their
# own (inherited by the CLI subprocesses they start), never the user's ~/.cache, and remove it at the end.
_TEST_CACHE = tempfile.mkdtemp(prefix="esrkit-test-cache-")
os.environ["XDG_CACHE_HOME"] = _TEST_CACHE
atexit.register(shutil.rmtree, _TEST_CACHE, ignore_errors=True)


@pytest.fixture
def shared() -> Path:
    """Root of the shared reference folder (skips when absent)."""
    return shared_path()


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches the network: ``ESRKIT_OFFLINE=1`` (tests of downloads undo it and serve files from their own
    loopback server, with a weights cache of their own: ``test_weights_hub``)."""
    monkeypatch.setenv("ESRKIT_OFFLINE", "1")
    monkeypatch.delenv("ESRKIT_WEIGHTS_MIRROR", raising=False)


@pytest.fixture(autouse=True)
def _pillow_bound_restored() -> Iterator[None]:
    """Pillow's ``MAX_IMAGE_PIXELS`` is process-wide and esrkit only ever raises it (``data.io``: a "no limit" run
    sets it to None): each test starts from the bound the one before it found, not from what that one left."""
    from PIL import Image

    from esrkit.data.io import reset_max_pixels

    bound = Image.MAX_IMAGE_PIXELS
    yield
    Image.MAX_IMAGE_PIXELS = bound
    reset_max_pixels()
