"""Compatibility with the original SRFlow checkpoints and options."""

from srflow.compat.official import (
    CheckpointError,
    config_from_official_options,
    convert_official_state_dict,
    load_official,
)
from srflow.compat.official_keys import detect_official_config, is_official_layout

__all__ = [
    "CheckpointError",
    "config_from_official_options",
    "convert_official_state_dict",
    "detect_official_config",
    "is_official_layout",
    "load_official",
]
