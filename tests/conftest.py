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
