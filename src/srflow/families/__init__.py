"""The registry of model families: one entry per family owns everything family-specific.

Configurations are tagged with their family (``family: HCFlow`` beside the options, in run
configs, presets and model files) and parsed, validated and built through the family's entry.
A state dict is mapped to its family, scale and full configuration by its keys and shapes
alone (as spandrel does for feed-forward SR models), trying derived families before their
parents, then renamed and loaded strictly::

    >>> from srflow.families import FAMILIES
    >>> [family.name for family in FAMILIES]
    ['NCSR', 'SRFlow', 'SRFlow-DA', 'HCFlow']
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping
from typing import Any

import torch
import yaml
from torch import Tensor

from srflow.config.loading import ConfigError, to_dict
from srflow.config.presets import preset_names, preset_path
from srflow.families.base import Detection, DetectionError, ModelFamily, PublishedModel
from srflow.families.hcflow import HCFLOW
from srflow.families.keys import canonical_state_dict
from srflow.families.ncsr import NCSR_FAMILY
from srflow.families.srflow import SRFLOW
from srflow.families.srflow_da import SRFLOW_DA
from srflow.models.contract import FlowSR

logger = logging.getLogger(__name__)
#: The key that names a configuration's family in plain data (run configs, presets).
FAMILY_KEY = "family"


def _derived_first(families: tuple[ModelFamily, ...]) -> tuple[ModelFamily, ...]:
    """The families in the given order, except that a family comes before its parent."""
    ordered: list[ModelFamily] = []
    for family in families:
        parents = [i for i, f in enumerate(ordered) if f.name == family.parent]
        ordered.insert(parents[0] if parents else len(ordered), family)
    return tuple(ordered)


#: Every family, a derived family before its parent (the order detection tries them in).
FAMILIES: tuple[ModelFamily, ...] = _derived_first((SRFLOW, SRFLOW_DA, HCFLOW, NCSR_FAMILY))


def _names() -> str:
    return ", ".join(f.name for f in FAMILIES)


def family_named(name: str) -> ModelFamily:
    """The family called ``name`` (``SRFlow``, ``SRFlow-DA``, ``HCFlow``).

    Raises:
        DetectionError: no family has that name (the message lists the known ones).
    """
    for family in FAMILIES:
        if family.name == name:
            return family
    raise DetectionError(f"unknown model family {name!r}; known: {_names()}")


def family_of(config: Any) -> ModelFamily:
    """The family a model configuration belongs to."""
    for family in FAMILIES:
        if family.owns(config):
            return family
    raise DetectionError(f"no model family has the configuration {config!r}")


def build(config: Any, generator: torch.Generator | None = None) -> FlowSR:
    """A randomly initialized model of ``config`` (its family's :meth:`~ModelFamily.build`)."""
    return family_of(config).build(config, generator)


def describe(config: Any) -> str:
    """One line naming the family's variant and scale (and the published checkpoint)."""
    return family_of(config).describe(config)


def published_models() -> list[tuple[ModelFamily, PublishedModel]]:
    """Every published checkpoint of every family."""
    return [(family, p) for family in FAMILIES for p in family.published]


def published_named(name: str) -> PublishedModel:
    """The published checkpoint called ``name`` (``SRFlowDA-R_4X``).

    Raises:
        ConfigError: no published checkpoint has that name (the message lists them).
    """
    for _, published in published_models():
        if published.name == name:
            return published
    names = ", ".join(p.name for _, p in published_models())
    raise ConfigError(f"unknown published model {name!r}; known: {names}")


# --- tagged configurations ------------------------------------------------------------------


def config_to_dict(config: Any) -> dict[str, Any]:
    """A model configuration as plain data, tagged with its family."""
    return {FAMILY_KEY: family_of(config).name, **to_dict(config)}


def config_from_dict(data: object, *, path: str = "model") -> Any:
    """A model configuration from plain data tagged with its family (or the name of a
    published model), strictly through the family's entry.

    Data without a ``family`` key (written before configurations were tagged) is read as
    the first family with no parent whose configuration it is, with a warning.

    Raises:
        ConfigError: an unknown family or published name, or options that are not the
            family's (one line naming the dotted key).
    """
    if isinstance(data, str):
        return published_named(data).config
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping or a published model's name, got "
                          f"{type(data).__name__} {data!r}")  # fmt: skip
    options = {k: v for k, v in data.items() if k != FAMILY_KEY}
    name = data.get(FAMILY_KEY)
    if name is None:
        return _untagged(options, path)
    try:
        family = family_named(str(name))
    except DetectionError as exc:
        raise ConfigError(f"{path}.{FAMILY_KEY}: {exc}") from None
    return _owned(family.parse_config(options, path), path)


def _owned(config: Any, path: str) -> Any:
    """``config`` if a family owns it (a configuration of a class two families share is the
    one whose options it has: SRFlow's or SRFlow-DA's sub-networks)."""
    try:
        family_of(config)
    except DetectionError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config


def config_class_of(data: object) -> type | None:
    """The configuration class tagged plain data names (``None``: untagged or unknown)."""
    if not isinstance(data, Mapping) or FAMILY_KEY not in data:
        return None
    try:
        return family_named(str(data[FAMILY_KEY])).config_class
    except DetectionError:
        return None


def _untagged(options: Mapping[str, Any], path: str) -> Any:
    """The configuration of untagged data: the first family with no parent that parses it;
    else the error of the family whose options it names most of."""
    errors = []
    for family in (f for f in FAMILIES if f.parent is None):
        try:
            config = _owned(family.parse_config(options, path), path)
        except ConfigError as exc:
            known = {f.name for f in dataclasses.fields(family.config_class)}
            errors.append((sum(key not in known for key in options), exc))
            continue
        name = family_of(config).name
        logger.warning("%s has no %r key: read as %s (add '%s: %s')",
                       path, FAMILY_KEY, name, FAMILY_KEY, name)  # fmt: skip
        return config
    raise min(errors, key=lambda error: error[0])[1]


def load_preset(name: str) -> Any:
    """The model configuration of a shipped preset (``tiny``, ``srflow_df2k_x4``, the model
    of a training preset) or of a published model by its name (``SRFlow_DF2K_4X``,
    ``SRFlowDA-R_4X``).

    Raises:
        ConfigError: an unknown name (the message lists the presets).
    """
    if name in preset_names():
        data = yaml.safe_load(preset_path(name).read_text(encoding="utf-8"))
        return config_from_dict(data["model"], path=f"preset {name}: model")
    try:
        return published_named(name).config
    except ConfigError:
        preset_path(name)  # the error lists the presets
        raise


# --- original checkpoints -------------------------------------------------------------------


def _shown(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


@functools.cache
def _published_keys(family_name: str, model_name: str) -> frozenset[str]:
    family = family_named(family_name)
    published = next(p for p in family.published if p.name == model_name)
    return frozenset(family.original_keys(published.config))


def closest_published(keys: set[str]) -> tuple[ModelFamily, PublishedModel, list[str], list[str]]:
    """The published checkpoint whose key set is nearest to ``keys``, with the missing and
    unexpected keys (wrapper prefixes ignored)."""
    keys = set(canonical_state_dict(dict.fromkeys(keys)))  # type: ignore[arg-type]
    best = None
    for family, published in published_models():
        expected = _published_keys(family.name, published.name)
        missing, unexpected = sorted(expected - keys), sorted(keys - expected)
        score = len(missing) + len(unexpected)
        if best is None or score < best[0]:
            best = (score, family, published, missing, unexpected)
    assert best is not None
    return best[1:]


def no_family_message(state_dict: Mapping[str, Tensor]) -> str:
    """One line: the families tried and how the nearest published checkpoint differs."""
    family, published, missing, unexpected = closest_published(set(state_dict))
    parts = [f"{len(missing)} missing ({_shown(missing)})"] if missing else []
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_shown(unexpected)})")
    return (
        f"matches no model family (tried {_names()}); closest is {family.name} "
        f"{published.name} with " + "; ".join(parts or ["different shapes"])
    )


def detect(state_dict: Mapping[str, Tensor], **hints: Any) -> Detection:
    """Recognise an original checkpoint: its family, configuration and published name.

    Args:
        state_dict: the checkpoint's tensors (wrapper prefixes such as ``module.`` allowed).
        hints: passed to the family (e.g. ``stacked_blocks`` for non-published layouts).

    Raises:
        DetectionError: one line: the family's reason, or the families tried and the
            closest match's missing and unexpected keys.
    """
    canonical = canonical_state_dict(state_dict)
    for family in FAMILIES:
        if family.claims(canonical):
            return family.detect(canonical, **hints)
    raise DetectionError(no_family_message(canonical))


def original_to_ours(state_dict: Mapping[str, Tensor], detection: Detection) -> dict[str, Tensor]:
    """An original state dict renamed to our keys for the detected family and config."""
    return detection.family.to_ours(canonical_state_dict(state_dict), detection.config)


__all__ = [
    "FAMILIES",
    "FAMILY_KEY",
    "Detection",
    "DetectionError",
    "ModelFamily",
    "PublishedModel",
    "build",
    "closest_published",
    "config_class_of",
    "config_from_dict",
    "config_to_dict",
    "describe",
    "detect",
    "family_named",
    "family_of",
    "load_preset",
    "no_family_message",
    "original_to_ours",
    "published_models",
    "published_named",
]
