"""What a model family is: its published checkpoints, how to recognise and convert them."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn


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
        config: the full model configuration (a family-specific frozen dataclass).
    """

    name: str
    variant: str
    scale: int
    file: str
    trained_on: str
    config: Any


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
    """One place that knows a family's published checkpoints: detect keys -> config -> build.

    Subclasses set :attr:`name` and :attr:`published` and implement the key handling.
    """

    name: str
    published: tuple[PublishedModel, ...]

    @abc.abstractmethod
    def claims(self, state_dict: Mapping[str, Tensor]) -> bool:
        """Whether the keys are this family's layout (cheap; no full check)."""

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
    def original_keys(self, config: Any) -> set[str]:
        """The keys an original checkpoint of ``config`` has (for error messages)."""

    @abc.abstractmethod
    def build(self, config: Any) -> nn.Module:
        """A randomly initialized model of ``config``."""

    @abc.abstractmethod
    def config_from_dict(self, data: Mapping[str, Any]) -> Any:
        """Parse a configuration stored in one of our checkpoints (strict)."""

    def owns(self, config: Any) -> bool:
        """Whether ``config`` is a configuration of this family (default: never)."""
        return False

    def published_for(self, config: Any) -> PublishedModel | None:
        """The published checkpoint with exactly this configuration, if any."""
        return next((p for p in self.published if p.config == config), None)

    def describe(self, config: Any) -> str:
        """One line naming the variant and scale, and the published checkpoint it equals."""
        published = self.published_for(config)
        if published is not None:
            return f"{published.variant} {published.scale}x (published {published.name})"
        return f"{self.name} {config.scale}x (custom configuration)"

    def detect(self, state_dict: Mapping[str, Tensor], **hints: Any) -> Detection:
        """:meth:`detect_config` with the matching published checkpoint."""
        config = self.detect_config(state_dict, **hints)
        return Detection(self, config, self.published_for(config))
