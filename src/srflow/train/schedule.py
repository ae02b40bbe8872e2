"""Training stages and the learning-rate schedule, as pure functions of the global step.

A run has ``l1_pretrain_steps`` steps of stage ``"l1"`` (the encoder's own SR output against
HR, L1 loss) followed by ``steps`` steps of NLL training. The NLL stage starts with the encoder
frozen (phase ``"nll_frozen"``) for ``encoder_freeze_fraction`` of its steps (the original's
``train_RRDB_delay``), then trains everything (phase ``"nll"``).
"""

from __future__ import annotations

import bisect
import math
from typing import Literal

from srflow.config.training import TrainConfig

Phase = Literal["l1", "nll_frozen", "nll"]


def phase_at(step: int, cfg: TrainConfig) -> Phase:
    """The phase that global step ``step`` (0-based) belongs to."""
    if step < cfg.l1_pretrain_steps:
        return "l1"
    if step - cfg.l1_pretrain_steps < encoder_frozen_steps(cfg):
        return "nll_frozen"
    return "nll"


def encoder_frozen_steps(cfg: TrainConfig) -> int:
    """Number of NLL steps with the encoder frozen."""
    return int(math.floor(cfg.encoder_freeze_fraction * cfg.steps))


def phase_end(step: int, cfg: TrainConfig) -> int:
    """First step after the phase containing ``step``."""
    phase = phase_at(step, cfg)
    if phase == "l1":
        return cfg.l1_pretrain_steps
    if phase == "nll_frozen":
        return cfg.l1_pretrain_steps + encoder_frozen_steps(cfg)
    return cfg.total_steps


def multistep_factor(step: int, total: int, milestones: tuple[float, ...], gamma: float) -> float:
    """``gamma ** (number of milestones m with step >= round(m * total))`` (MultiStepLR)."""
    bounds = sorted(int(round(m * total)) for m in milestones)
    return gamma ** bisect.bisect_right(bounds, step)


def learning_rate(step: int, cfg: TrainConfig, scale: float = 1.0) -> float:
    """Learning rate of global step ``step``; ``scale`` is the rollback factor so far."""
    if step < cfg.l1_pretrain_steps:
        base, local, total = cfg.l1_lr, step, cfg.l1_pretrain_steps
    else:
        base, local, total = cfg.lr, step - cfg.l1_pretrain_steps, cfg.steps
    return base * scale * multistep_factor(local, total, cfg.lr_milestones, cfg.lr_gamma)
