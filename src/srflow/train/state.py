"""Everything a training checkpoint holds, and saving, restoring and rolling back to it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from srflow.config.loading import to_dict
from srflow.models.contract import FlowSR
from srflow.train import checkpoint as ckpt
from srflow.train.config import RunConfig
from srflow.train.ema import ModelEMA
from srflow.train.guard import NonFiniteGuard, TrainingDivergedError
from srflow.train.logging import MetricsLog
from srflow.train.setup import build_optimizer

if TYPE_CHECKING:
    from srflow.train.adversarial import Adversary

logger = logging.getLogger(__name__)


class TrainingState:
    """Model, per-stage optimizers, EMA, guard and counters of a run.

    Attributes:
        step: global steps done (L1 and NLL).
        actnorm_ready: the ActNorm data-dependent init has run.
        adversary: the discriminator of a GAN loss (set by the loop), checkpointed with it.
        rollbacks: rollbacks so far; also the data stream id (a rollback re-draws the data).
        lr_scale: product of the rollback learning-rate factors.
        last_saved: step of the newest checkpoint (-1: none).
    """

    def __init__(
        self, cfg: RunConfig, model: FlowSR, used_by_nll: set[str], device: torch.device
    ) -> None:
        self.cfg, self.model, self.used_by_nll, self.device = cfg, model, used_by_nll, device
        tc = cfg.train
        self.guard = NonFiniteGuard(tc.nonfinite_window, tc.max_nonfinite, device)
        self.optimizers: dict[str, torch.optim.Adam] = {}
        self.ema: ModelEMA | None = None
        self.adversary: Adversary | None = None
        self.step, self.actnorm_ready, self.rollbacks = 0, False, 0
        self.lr_scale, self.last_saved = 1.0, -1

    def optimizer(self, stage: str) -> torch.optim.Adam:
        """The stage's optimizer (``l1`` or ``nll``), created once."""
        if stage not in self.optimizers:
            self.optimizers[stage] = build_optimizer(
                self.model, stage, self.cfg, self.used_by_nll, self.device
            )
        return self.optimizers[stage]

    def payload(self, stage: str) -> dict[str, Any]:
        """The checkpoint contents (see :mod:`srflow.train.checkpoint`)."""
        optimizer = self.optimizers.get(stage)
        return {
            "step": self.step,
            "config": to_dict(self.cfg),
            "model": self.model.state_dict(),
            "optimizer_stage": stage,
            "optimizer": None if optimizer is None else optimizer.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "adversary": None if self.adversary is None else self.adversary.state_dict(),
            "actnorm_initialized": self.actnorm_ready,
            "guard": {
                "skipped_total": self.guard.skipped_total,
                "rollbacks": self.rollbacks,
                "lr_scale": self.lr_scale,
            },
            "rng": ckpt.rng_states(),
        }

    def save(self, run_dir: Path, stage: str, write: bool) -> None:
        """Checkpoint the current step (``write``: this rank writes the file)."""
        if write:
            ckpt.save_checkpoint(
                run_dir, self.payload(stage), keep=self.cfg.train.keep_checkpoints
            )
        self.last_saved = self.step

    def restore(self, payload: dict[str, Any]) -> None:
        """Load a checkpoint's contents (optimizers of other stages are dropped)."""
        self.model.load_state_dict(payload["model"])
        self.optimizers = {}
        if payload["optimizer"] is not None:
            self.optimizer(payload["optimizer_stage"]).load_state_dict(payload["optimizer"])
        self.ema = None
        if payload["ema"] is not None:
            self.ema = ModelEMA(self.model, self.cfg.train.ema_decay)
            self.ema.load_state_dict(payload["ema"])
        if self.adversary is not None and payload.get("adversary") is not None:
            self.adversary.load_state_dict(payload["adversary"])
        guard = payload["guard"]
        self.guard.skipped_total = int(guard["skipped_total"])
        self.step = self.last_saved = int(payload["step"])
        self.actnorm_ready = bool(payload["actnorm_initialized"])
        self.rollbacks, self.lr_scale = int(guard["rollbacks"]), float(guard["lr_scale"])

    def rollback(self, run_dir: Path, skipped: int, log: MetricsLog | None) -> None:
        """Return to the last checkpoint with a lower learning rate, loudly.

        Raises:
            TrainingDivergedError: no checkpoint, or ``max_rollbacks`` already used.
        """
        tc = self.cfg.train
        path = ckpt.last_checkpoint(run_dir)
        payload = None
        if self.rollbacks < tc.max_rollbacks and path is not None:
            path, payload, _ = ckpt.newest_intact(run_dir, self.device)
        if payload is None:
            raise TrainingDivergedError(
                f"{skipped} non-finite steps before step {self.step} after {self.rollbacks} "
                f"rollback(s) (train.max_rollbacks={tc.max_rollbacks}); giving up. Last "
                f"checkpoint: {path}. Try a lower train.lr or train.grad_clip_norm."
            )
        rollbacks, lr_scale = self.rollbacks + 1, self.lr_scale * tc.rollback_lr_factor
        bad_step, skipped_total = self.step, self.guard.skipped_total
        self.restore(payload)
        self.rollbacks, self.lr_scale = rollbacks, lr_scale
        self.guard.skipped_total = skipped_total
        self.guard.reset_window()
        logger.warning(
            "ROLLBACK %d/%d: %d non-finite steps within %d steps before step %d; restored %s "
            "(step %d); learning rate now x%g",
            rollbacks, tc.max_rollbacks, skipped, tc.nonfinite_window, bad_step, path,
            self.step, lr_scale,
        )  # fmt: skip
        if log is not None:
            log.write("event", bad_step, event="rollback", to_step=self.step,
                      rollbacks=rollbacks, lr_scale=lr_scale)  # fmt: skip
