"""Inference: the single :class:`Upscaler` path used by the CLI, evaluation and benchmarks alike."""

from .upscaler import Upscaler

__all__ = ["Upscaler"]
