"""The registry of model families: one entry per family, each knowing its published checkpoints.

A state dict is mapped to its family, scale and full configuration by its keys and shapes
alone (as spandrel does for feed-forward SR models), then renamed and loaded strictly::

    >>> from srflow.families import FAMILIES
    >>> [family.name for family in FAMILIES]
    ['SRFlow', 'SRFlow-DA', 'HCFlow']
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from srflow.families.base import Detection, DetectionError, ModelFamily, PublishedModel
from srflow.families.hcflow import HCFLOW
from srflow.families.srflow import SRFLOW
from srflow.families.srflow_da import SRFLOW_DA

FAMILIES: tuple[ModelFamily, ...] = (SRFLOW, SRFLOW_DA, HCFLOW)


def family_named(name: str) -> ModelFamily:
    """The family called ``name`` (``SRFlow``, ``SRFlow-DA``)."""
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


def published_models() -> list[tuple[ModelFamily, PublishedModel]]:
    """Every published checkpoint of every family."""
    return [(family, p) for family in FAMILIES for p in family.published]


def _names() -> str:
    return ", ".join(f.name for f in FAMILIES)


def _shown(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


@functools.cache
def _published_keys(family_name: str, model_name: str) -> frozenset[str]:
    family = family_named(family_name)
    published = next(p for p in family.published if p.name == model_name)
    return frozenset(family.original_keys(published.config))


def closest_published(keys: set[str]) -> tuple[ModelFamily, PublishedModel, list[str], list[str]]:
    """The published checkpoint whose key set is nearest to ``keys``, with the missing and
    unexpected keys (``module.`` prefixes ignored)."""
    keys = {k.removeprefix("module.") for k in keys}
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
        state_dict: the checkpoint's tensors (a ``module.`` prefix is allowed).
        hints: passed to the family (e.g. ``stacked_blocks`` for non-published layouts).

    Raises:
        DetectionError: one line: the family's reason, or the families tried and the
            closest match's missing and unexpected keys.
    """
    for family in FAMILIES:
        if family.claims(state_dict):
            return family.detect(state_dict, **hints)
    raise DetectionError(no_family_message(state_dict))


__all__ = [
    "FAMILIES",
    "Detection",
    "DetectionError",
    "ModelFamily",
    "PublishedModel",
    "closest_published",
    "detect",
    "family_named",
    "family_of",
    "no_family_message",
    "published_models",
]
