"""The typed errors of the inference backends (all user errors but :class:`ExportError`'s internal causes)."""

from __future__ import annotations

from ...errors import EsrkitError, InputError

__all__ = ["BackendError", "BackendNotInstalledError", "ExportError", "PrecisionNotSupportedError",
           "UnknownBackendError"]


class BackendError(InputError):
    """A backend cannot run as asked (base class; the CLI turns it into one line and exit code 2)."""


class UnknownBackendError(BackendError):
    """The backend name is not one of the runner table's names (or ``auto``)."""


class BackendNotInstalledError(BackendError):
    """The backend's Python package is not installed."""


class PrecisionNotSupportedError(BackendError):
    """The backend, or this CPU, cannot run the requested precision natively."""


class ExportError(EsrkitError, RuntimeError):
    """The model could not be exported to ONNX (an operation the exporter does not know, a shape it bakes in)."""
