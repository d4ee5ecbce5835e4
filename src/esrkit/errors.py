"""Typed exceptions.

Every problem a user can cause (bad path, corrupt image, unknown model, foreign checkpoint) raises a subclass of
:class:`EsrkitError` with a one-line message naming the culprit. The CLI turns these into exit code 2 without a
traceback; anything else is a bug and keeps its traceback.

Library code never names a command-line flag: an error about one argument carries that argument's Python name in
``param`` (``InputError("no CUDA device is available", param="device")`` reads ``device: no CUDA …`` from the
API), and the CLI renders it as the flag the user typed (``--device: no CUDA …``; see :mod:`esrkit.cli`).
"""

from __future__ import annotations

from collections.abc import Iterable


class EsrkitError(Exception):
    """Base class of user-facing errors (the CLI exits with code 2 on these).

    ``message`` is the problem; ``param``, when set, is the argument it concerns (a Python parameter name).
    """

    def __init__(self, message: str = "", *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def __str__(self) -> str:
        return f"{self.param}: {self.message}" if self.param else self.message


class InputError(EsrkitError, ValueError):
    """A path, argument or option value is missing or invalid."""


class ImageReadError(EsrkitError, OSError):
    """An image file cannot be decoded (corrupt, truncated or unsupported format)."""


class OutputError(EsrkitError, OSError):
    """An output cannot be written (a full disk, a name too long, permission denied); the message names the
    output, not the temporary file being written."""


class UnknownModelError(EsrkitError, KeyError):
    """A model name is not in the registry (``str`` is the message itself, not KeyError's quoted repr)."""

    __str__ = EsrkitError.__str__


class CheckpointError(EsrkitError, ValueError):
    """A checkpoint cannot be read, is unsafe, or matches no known layout."""


class WeightsError(EsrkitError, OSError):
    """Released weights cannot be had: no released file for that model and scale, a download that fails (refused,
    404, timeout, truncated), a file whose sha256 differs from the catalogue's, or offline with nothing cached."""


class PruningError(EsrkitError, ValueError):
    """A model cannot be pruned structurally (its graph, or its pruned widths, fit no configuration of its
    family)."""


def key_list(keys: Iterable[object]) -> str:
    """``keys`` for a one-line message, comma-separated and sorted as text: strings as they are, anything else by
    ``repr``. A mapping read from YAML may have number or null keys (``0``, ``.0e-4`` reads as 0.0, an empty key
    is None), which ``sorted`` and ``str.join`` alone would turn into a TypeError instead of the error that refuses
    them (found by fuzz/)."""
    return ", ".join(sorted(k if isinstance(k, str) else repr(k) for k in keys))
