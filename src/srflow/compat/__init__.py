"""Compatibility with the original SRFlow and SRFlow-DA checkpoints and options.

Which family a checkpoint belongs to is decided in one place, :mod:`srflow.families`.
"""

from srflow.compat.official import (
    CheckpointError,
    config_from_official_options,
    convert_official_state_dict,
    detect_official_config,
    load_official,
)

__all__ = [
    "CheckpointError",
    "config_from_official_options",
    "convert_official_state_dict",
    "detect_official_config",
    "load_official",
]
