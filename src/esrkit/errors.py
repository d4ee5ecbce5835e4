"""Typed exceptions.

Every problem a user can cause (bad path, corrupt image, unknown model, foreign checkpoint) raises a subclass of
:class:`EsrkitError` with a one-line message naming the culprit. The CLI turns these into exit code 2 without a
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class EsrkitError(Exception):
    """Base class of user-facing errors (the CLI exits with code 2 on these)."""


class InputError(EsrkitError, ValueError):
    """A path, argument or option value is missing or invalid."""


class ImageReadError(EsrkitError, OSError):
    """An image file cannot be decoded (corrupt, truncated or unsupported format)."""


class UnknownModelError(EsrkitError, KeyError):
    """A model name is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(EsrkitError, ValueError):
    """A checkpoint cannot be read, is unsafe, or matches no known layout."""
