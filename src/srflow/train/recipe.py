"""What a run trains, per model family: the model, its loss module, its trainable parameters.

SRFlow (and SRFlow-DA) train with :class:`~srflow.train.objective.TrainingObjective` (L1
pre-training of the encoder, then the NLL); HCFlow with
:class:`~srflow.train.hcflow_objective.HCFlowObjective` (the weighted terms of
``train.losses``) and, when ``losses.gan > 0``, a discriminator
(:mod:`srflow.train.adversarial`). ``train.init_from`` starts from a model file's weights.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from srflow.config.hcflow import HCFlowConfig
from srflow.config.training import RunConfig
from srflow.models.hcflow import HCFlow
from srflow.models.srflow import SRFlow
from srflow.train.hcflow_objective import HCFlowObjective
from srflow.train.objective import TrainingObjective, parameters_used_by

logger = logging.getLogger(__name__)
TrainableModel = SRFlow | HCFlow
Objective = TrainingObjective | HCFlowObjective


class InitWeightsError(ValueError):
    """``train.init_from`` cannot be used (one line naming the file)."""


def build_model(cfg: RunConfig, device: torch.device) -> TrainableModel:
    """The freshly initialised model of ``cfg.model`` (seeded by ``train.seed``)."""
    torch.manual_seed(cfg.train.seed)
    if isinstance(cfg.model, HCFlowConfig):
        model: TrainableModel = HCFlow(cfg.model)
    else:
        model = SRFlow(cfg.model, generator=torch.Generator().manual_seed(cfg.train.seed))
    return model.to(device).train()


def build_objective(model: TrainableModel, cfg: RunConfig, device: torch.device) -> Objective:
    """The loss module; the VGG19 feature network is loaded here when the loss needs it.

    Raises:
        PretrainedWeightsError: the VGG19 weights file is missing or unusable.
    """
    if isinstance(model, SRFlow):
        return TrainingObjective(model)
    losses = cfg.train.losses
    feature_loss = None
    if losses.feature:
        from srflow.train.perceptual import FeatureLoss, load_vgg19_features

        assert losses.vgg19_weights is not None
        feature_loss = FeatureLoss(load_vgg19_features(losses.vgg19_weights)).to(device)
    return HCFlowObjective(model, losses, feature_loss)


def used_parameters(objective: Objective, device: torch.device) -> set[str]:
    """Names of the parameters the (NLL) stage trains."""
    if isinstance(objective, TrainingObjective):
        return parameters_used_by(objective, "nll", device)
    return {name for name, p in objective.model.named_parameters() if p.requires_grad}


def load_init_weights(model: TrainableModel, path: str | Path) -> None:
    """Copy the weights of a model file (ours or a published ``.pth``) into ``model``.

    Raises:
        InitWeightsError: the file cannot be loaded or holds another configuration.
    """
    from srflow.compat.official import CheckpointError
    from srflow.models.checkpoint import load_model

    try:
        source = load_model(path)
    except (CheckpointError, OSError, ValueError) as exc:
        message = str(exc)
        raise InitWeightsError(message if str(path) in message else f"{path}: {message}") from None
    if type(source) is not type(model) or source.config != model.config:
        raise InitWeightsError(
            f"{path}: train.init_from holds another model configuration than this run's "
            f"(its {type(source).__name__} {source.config.scale}x differs)"
        )
    model.load_state_dict(source.state_dict())
    logger.info("initialised from %s", path)
