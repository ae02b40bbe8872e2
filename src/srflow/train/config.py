"""A training run's configuration: ``RunConfig(model, data, train)``.

A run config is one YAML file with three sections, loaded strictly by :func:`load_run_config`
(unknown keys and wrong types are errors naming the dotted path) and overridden from the
command line with ``--set train.lr=2e-4``:

* ``model:`` a model configuration tagged with its family (``family: HCFlow`` beside its
  options), or the name of a published model (``model: SRFlowDA-R_4X``); parsed, checked and
  overridden (``--set model.trunk_steps=2``) through the family's registry entry
  (:mod:`srflow.families`);
* ``data:`` (:class:`~srflow.config.training.DataConfig`) and ``train:``
  (:class:`~srflow.config.training.TrainConfig`).

The resolved config is written to ``RUN_DIR/config.yaml`` and embedded in every training
checkpoint, so a run rebuilds its own model.

Notes on the published recipe (SRFlow, ECCV 2020, and its ``code/confs/*.yml``):

* Adam with betas ``(0.9, 0.999)``: the original passes ``beta1: 0.9, beta2: 0.99`` under keys
  that ``torch.optim.Adam`` ignores, so the defaults were what it actually trained with.
* lr ``5e-4`` (paper; the published DF2K 4x yml says 2.5e-4 at batch 12), halved at 50/75/90/95%
  of 200k iterations, no weight decay, no warm-up, batch 16 of 160x160 HR patches.
* The original applies no gradient clipping; we clip the global norm at ``grad_clip_norm``
  (default 100, far above the norms of healthy steps) as a guard against rare spikes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml

from srflow.config.loading import (
    ConfigError,
    ConfigValueError,
    Tagged,
    apply_overrides,
    from_dict,
    load_yaml,
)
from srflow.config.presets import training_preset_path
from srflow.config.training import DataConfig, TrainConfig
from srflow.families import (
    FAMILY_KEY,
    config_class_of,
    config_from_dict,
    config_to_dict,
    family_of,
    published_models,
    published_named,
)

#: A model configuration of any family, tagged with the family in its data.
TaggedModelConfig = Annotated[
    Any,
    Tagged(
        lambda data, path: config_from_dict(data, path=path), config_to_dict, config_class_of,
        FAMILY_KEY,
    ),
]


def _published_default() -> Any:
    """The model of a run config that names none: SRFlow DF2K 4x, the first published model."""
    return published_models()[0][1].config


@dataclass(frozen=True)
class RunConfig:
    """A whole training run: the model to build, its data and the optimization."""

    model: TaggedModelConfig = field(default_factory=_published_default)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        """Cross-section checks: the training options the model's family supports, and patch
        sizes against the model's size constraints."""
        family_of(self.model).check_training(self.train)
        scale, multiple = self.model.scale, self.model.size_multiple_lr
        for name, size in (("data.patch_size", self.data.patch_size),
                           ("data.val_crop", self.data.val_crop)):  # fmt: skip
            if size and (size % scale or (size // scale) % multiple):
                raise ConfigValueError(
                    f"{name}={size} must be a multiple of scale*{multiple} = {scale * multiple}"
                )


def load_run_config(source: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """Load a run config from a YAML file or a shipped preset name, strictly.

    Args:
        source: a YAML path, or the name of a training preset in ``srflow/config/presets``
            (``train_df2k_x4``, ...; a model preset such as ``tiny`` is refused: it has no
            data or schedule, and the defaults are the published 200,000-step run).
        overrides: ``"section.key=value"`` strings applied in order.

    Raises:
        ConfigError: one line naming the file (or preset) and the dotted key at fault.
        OSError: if the file cannot be read.
    """
    path = Path(source)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such config file")
        return load_yaml(RunConfig, path, overrides, _apply_with_model_names)
    preset = training_preset_path(str(source))
    try:
        return load_yaml(RunConfig, preset, overrides, _apply_with_model_names)
    except ConfigError as exc:
        raise ConfigError(f"preset {source}: {str(exc).removeprefix(f'{preset}: ')}") from None


def named_model(value: object) -> object:
    """A published model's name (``SRFlowDA-R_4X``) -> its tagged model config as plain data;
    any other value is returned as it is."""
    if not isinstance(value, str):
        return value
    try:
        return config_to_dict(published_named(value).config)
    except ConfigError as exc:
        raise ConfigError(f"model: {exc}") from None


def _apply_with_model_names(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Overrides in order, where ``model`` may name a published model (in the file or as
    ``model=NAME``); later ``model.*`` overrides change that model's config."""
    data = {**data, "model": named_model(data.get("model", {}))}
    for override in overrides:
        key, _, value = override.partition("=")
        if key.strip() == "model":
            data["model"] = named_model(yaml.safe_load(value))
        else:
            data = apply_overrides(data, [override])
    return data


def run_config_from_dict(data: object, path: str = "") -> RunConfig:
    """A run config from plain data (a checkpoint's ``config``), strictly."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping")
    return from_dict(RunConfig, data, path=path)
