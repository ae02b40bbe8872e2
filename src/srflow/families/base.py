"""What a model family is: one registry entry that owns everything family-specific.

Its configuration class (parsed strictly, tagged ``family: NAME`` in run configs and model
files), how to build a model of it, how to recognise an original checkpoint of it from its keys
(a derived family names its ``parent`` and is tried first), how to rename keys both ways, its
published checkpoints, and its training recipe (the options it supports and its loss).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from srflow.config.loading import ConfigValueError, from_dict
from srflow.config.losses import LossWeights
from srflow.config.training import TrainConfig
from srflow.models.contract import FlowSR

if TYPE_CHECKING:
    from srflow.families.objective import Objective


class DetectionError(ValueError):
    """A state dict is not (or not quite) a checkpoint of a family."""


@dataclass(frozen=True)
class PublishedModel:
    """One checkpoint released by a paper's authors.

    Attributes:
        name: short name (``SRFlow_DF2K_4X``, ``SRFlowDA-R_4X``).
        variant: the paper's name of the variant (``SRFlow``, ``SRFlow-DA-R``).
        scale: super-resolution factor.
        file: the file name of the release.
        trained_on: training data.
        config: the full model configuration (the family's config class).
        label: how commands name it (``srflow info``: "... (published LABEL)"); default
            :attr:`name` (NCSR: ``4X``, its release's file name).
    """

    name: str
    variant: str
    scale: int
    file: str
    trained_on: str
    config: Any
    label: str = ""

    @property
    def shown_as(self) -> str:
        """The name commands show (:attr:`label`, else :attr:`name`)."""
        return self.label or self.name


@dataclass(frozen=True)
class Detection:
    """What a state dict was recognised as."""

    family: ModelFamily
    config: Any
    published: PublishedModel | None

    def describe(self) -> str:
        """One line, e.g. ``SRFlow-DA-R 4x (published SRFlowDA-R_4X)``."""
        return self.family.describe(self.config)


class ModelFamily(abc.ABC):
    """One family's registry entry.

    Subclasses set :attr:`name`, :attr:`config_class`, :attr:`published` (and :attr:`parent`
    for a family derived from another) and implement building, key handling and the training
    recipe.
    """

    name: str
    #: The family this one derives from (its checkpoints look like the parent's plus more):
    #: detection tries this family first.
    parent: str | None = None
    config_class: type
    published: tuple[PublishedModel, ...]

    # --- configuration ---------------------------------------------------------------------

    def owns(self, config: Any) -> bool:
        """Whether ``config`` is a configuration of this family."""
        return type(config) is self.config_class

    def parse_config(self, data: Mapping[str, Any], path: str = "model") -> Any:
        """A configuration of this family's class from plain data (strict: unknown keys,
        wrong types and out-of-range values are :class:`ConfigError` naming the dotted path).
        Families that share a class (SRFlow and SRFlow-DA) tell their configurations apart by
        their options (:meth:`owns`)."""
        return from_dict(self.config_class, data, path=path)

    # --- building ----------------------------------------------------------------------------

    @abc.abstractmethod
    def build(self, config: Any, generator: torch.Generator | None = None) -> FlowSR:
        """A randomly initialized model of ``config``; with a ``generator``, every initial
        weight comes from it (the global random state is left as it was)."""

    def describe(self, config: Any) -> str:
        """One line naming the variant and scale, and the published checkpoint it equals."""
        published = self.published_for(config)
        if published is not None:
            return f"{published.variant} {published.scale}x (published {published.shown_as})"
        return f"{self.name} {config.scale}x (custom configuration)"

    def published_for(self, config: Any) -> PublishedModel | None:
        """The published checkpoint with exactly this configuration, if any."""
        return next((p for p in self.published if p.config == config), None)

    # --- original checkpoints -----------------------------------------------------------------

    @abc.abstractmethod
    def claims(self, state_dict: Mapping[str, Tensor]) -> bool:
        """Whether the keys (canonical: no ``module.`` prefix) are this family's layout
        (cheap; no full check)."""

    @abc.abstractmethod
    def detect_config(self, state_dict: Mapping[str, Tensor], **hints: Any) -> Any:
        """The configuration an original state dict was made with, from keys and shapes.

        Raises:
            DetectionError: the layout is this family's but cannot be read.
        """

    @abc.abstractmethod
    def to_ours(self, state_dict: Mapping[str, Tensor], config: Any) -> dict[str, Tensor]:
        """Rename an original state dict to this package's keys (unused tensors dropped)."""

    @abc.abstractmethod
    def to_original(self, state_dict: Mapping[str, Tensor], config: Any) -> dict[str, Tensor]:
        """Rename one of our state dicts to the original's keys (the inverse of
        :meth:`to_ours`, up to the tensors the original keeps but never uses)."""

    def original_keys(self, config: Any) -> set[str]:
        """The keys an original checkpoint of ``config`` has (for error messages)."""
        with torch.device("meta"):
            ours = self.build(config).state_dict()
        return set(self.to_original(ours, config)) | set(self.unused_original_keys(config))

    def unused_original_keys(self, config: Any) -> tuple[str, ...]:
        """Keys the original checkpoints hold for modules their forward never calls."""
        return ()

    def detect(self, state_dict: Mapping[str, Tensor], **hints: Any) -> Detection:
        """:meth:`detect_config` with the matching published checkpoint."""
        config = self.detect_config(state_dict, **hints)
        return Detection(self, config, self.published_for(config))

    # --- training recipe ----------------------------------------------------------------------

    def check_training(self, train: TrainConfig) -> None:
        """Refuse training options this family does not support.

        Raises:
            ConfigValueError: one line naming the option.
        """
        if not train.losses.nll_only:
            raise ConfigValueError(f"train.losses: {self.name} models train with the NLL alone")

    @abc.abstractmethod
    def objective(
        self, model: FlowSR, losses: LossWeights, feature_loss: nn.Module | None = None
    ) -> Objective:
        """The training loss of ``model`` (``feature_loss``: the VGG19 feature distance, when
        ``losses.feature`` weights it)."""
