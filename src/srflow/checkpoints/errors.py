"""The one error type of loading and saving model files."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A model file cannot be used; the message names the file and the problem (one line)."""
