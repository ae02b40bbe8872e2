"""What a run trains, through the model's family: the model, its loss, its trainable parameters.

Each family's registry entry (:mod:`srflow.families`) builds the model from a generator seeded
by ``train.seed`` and gives its training loss (:class:`~srflow.families.objective.Objective`):
SRFlow's L1 pre-training of the encoder then the NLL, HCFlow's weighted terms of
``train.losses`` (with a discriminator when ``losses.gan > 0``:
:mod:`srflow.train.adversarial`). ``train.init_from`` starts from a model file's weights.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from srflow.checkpoints import CheckpointError, load_model
from srflow.families import family_of
from srflow.families.objective import Objective
from srflow.models.contract import FlowSR
from srflow.train.config import RunConfig

logger = logging.getLogger(__name__)


class InitWeightsError(ValueError):
    """``train.init_from`` cannot be used (one line naming the file)."""


def build_model(cfg: RunConfig, device: torch.device) -> FlowSR:
    """The freshly initialised model of ``cfg.model``, every weight drawn from a generator
    seeded by ``train.seed`` (the global random state is not touched)."""
    generator = torch.Generator().manual_seed(cfg.train.seed)
    return family_of(cfg.model).build(cfg.model, generator).to(device).train()


def build_objective(model: FlowSR, cfg: RunConfig, device: torch.device) -> Objective:
    """The family's loss module; the VGG19 feature network is loaded here when the loss needs
    it.

    Raises:
        PretrainedWeightsError: the VGG19 weights file is missing or unusable.
    """
    losses = cfg.train.losses
    feature_loss = None
    if losses.feature:
        from srflow.train.perceptual import FeatureLoss, load_vgg19_features

        assert losses.vgg19_weights is not None
        feature_loss = FeatureLoss(load_vgg19_features(losses.vgg19_weights)).to(device)
    return family_of(cfg.model).objective(model, losses, feature_loss)


def load_init_weights(model: FlowSR, path: str | Path) -> None:
    """Copy the weights of a model file (ours or a published ``.pth``) into ``model``.

    Raises:
        InitWeightsError: the file cannot be loaded or holds another configuration.
    """
    try:
        source = load_model(path)
    except (CheckpointError, OSError, ValueError) as exc:
        message = str(exc)
        raise InitWeightsError(message if str(path) in message else f"{path}: {message}") from None
    if source.config != model.config:
        raise InitWeightsError(
            f"{path}: train.init_from holds another model configuration than this run's "
            f"(its {family_of(source.config).describe(source.config)} differs)"
        )
    model.load_state_dict(source.state_dict())
    logger.info("initialised from %s", path)
