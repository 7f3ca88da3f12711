"""Exceptions of the pure FEIG codec (no I/O involved)."""

from __future__ import annotations


class FeigCodecError(ValueError):
    """A frame or payload does not follow the FEIG ISO Host layout."""
