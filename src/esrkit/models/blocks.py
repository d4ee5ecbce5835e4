"""Shared building blocks (to be written)."""
