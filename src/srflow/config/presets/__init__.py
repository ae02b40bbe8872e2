"""Named YAML presets shipped with the package (``srflow_df2k_x4``, ``tiny``, ...)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from srflow.config.hcflow import HCFlowConfig
from srflow.config.loading import ConfigError, from_dict
from srflow.config.schema import ModelConfig


def preset_names() -> list[str]:
    """Names of the shipped presets."""
    return sorted(
        Path(p.name).stem
        for p in resources.files(__package__).iterdir()
        if p.name.endswith(".yaml")
    )


def preset_path(name: str) -> Path:
    """Path of a shipped preset file."""
    if name not in preset_names():
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(preset_names())}")
    return Path(str(resources.files(__package__) / f"{name}.yaml"))


def load_preset(name: str) -> ModelConfig | HCFlowConfig:
    """The model configuration of a shipped preset, or of a published model by its name
    (``SRFlow_DF2K_4X``, ``SRFlowDA-R_4X``: see :mod:`srflow.families`)."""
    from srflow.config.training import RunConfig, named_model

    if name in preset_names():
        model = yaml.safe_load(preset_path(name).read_text())["model"]
    else:
        try:
            model = named_model(name)
        except ConfigError:
            preset_path(name)  # the error lists the presets
            raise
    return from_dict(RunConfig, {"model": named_model(model)}).model
