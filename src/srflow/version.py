"""The package version (one place: the CLI and the public API read it)."""

__version__ = "0.1.0"
