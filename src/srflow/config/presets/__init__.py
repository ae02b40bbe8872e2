"""Named YAML presets shipped with the package.

Two kinds, kept apart by name: *model presets* (an architecture only: ``srflow_df2k_x4``,
``tiny``, ...), read by :func:`srflow.families.load_preset`, and *training presets*
(``train_...``: a model, its data and its schedule), read by ``srflow train``
(:func:`srflow.train.config.load_run_config`). This module only finds them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from srflow.config.loading import ConfigError


def preset_names() -> list[str]:
    """Names of the shipped presets."""
    return sorted(
        Path(p.name).stem
        for p in resources.files(__package__).iterdir()
        if p.name.endswith(".yaml")
    )


TRAINING_PREFIX = "train_"


def model_preset_names() -> list[str]:
    """The presets that describe an architecture only (for :func:`load_preset`)."""
    return [n for n in preset_names() if not n.startswith(TRAINING_PREFIX)]


def training_preset_names() -> list[str]:
    """The presets that ``srflow train`` runs (model, data and schedule)."""
    return [n for n in preset_names() if n.startswith(TRAINING_PREFIX)]


def training_preset_path(name: str) -> Path:
    """Path of a shipped training preset; a model preset's name is refused with the reason."""
    listing = ", ".join(training_preset_names())
    if name in model_preset_names():
        guess = f"{TRAINING_PREFIX}{name}"
        hint = f"; did you mean {guess}?" if guess in training_preset_names() else ""
        raise ConfigError(f"{name!r} is a model preset (an architecture), not a training "
                          f"preset{hint} (training presets: {listing})")  # fmt: skip
    if name not in training_preset_names():
        raise ConfigError(f"unknown training preset {name!r}; training presets: {listing}")
    return preset_path(name)


def preset_path(name: str) -> Path:
    """Path of a shipped preset file."""
    if name not in preset_names():
        raise ConfigError(f"unknown preset {name!r}; model presets: "
                          f"{', '.join(model_preset_names())}; training presets (srflow "
                          f"train): {', '.join(training_preset_names())}")  # fmt: skip
    return Path(str(resources.files(__package__) / f"{name}.yaml"))
