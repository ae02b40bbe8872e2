"""The training loop of every family: ``train(cfg, run_dir)``.

Setup (seed, data, model, resume) -> per phase (``l1``, ``nll_frozen``, ``nll``; see
:mod:`srflow.train.schedule`): trainable parameters, ActNorm data-dependent init on the first
NLL batch, EMA, optimizer, checkpoint, DDP wrapper, loader -> per step: loss, backward, clip,
non-finite guard, Adam step (cancelled on the device if non-finite), EMA -> periodically: log,
guard check (rollback), checkpoint, validation -> final checkpoint, validation and export.
HCFlow runs have one phase (``nll``) whose loss is the weighted sum of ``train.losses``
(:mod:`srflow.train.recipe`); with a GAN term the discriminator steps after the model.

No host synchronization happens per step on CUDA: losses, gradient norms and the guard's
flags accumulate on the device and are read at log intervals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from srflow.checkpoints import save_model
from srflow.config.losses import trained_temperature
from srflow.data.datasets import global_batch
from srflow.flows import data_dependent_init
from srflow.models.contract import FlowSR
from srflow.train import checkpoint as ckpt
from srflow.train import distributed as dist
from srflow.train.config import RunConfig
from srflow.train.ema import ModelEMA
from srflow.train.guard import NonFiniteGuard, optimizer_step
from srflow.train.interrupt import StopRequest, TrainingInterrupted, stop_on_interrupt
from srflow.train.logging import MetricsLog, progress_bar
from srflow.train.recipe import build_model, build_objective, load_init_weights
from srflow.train.schedule import Phase, learning_rate, phase_at, phase_end
from srflow.train.setup import (
    RunDirError,
    build_data,
    check_resumed_config,
    configure_backends,
    make_loader,
    prepare_run_dir,
    resolve_device,
    set_trainable,
)
from srflow.train.state import TrainingState
from srflow.train.validation import validate

logger = logging.getLogger(__name__)
BatchHook = Callable[[int, Tensor, Tensor], tuple[Tensor, Tensor]]
ACTNORM_INIT_MAX_SAMPLES = 64


@dataclass
class TrainResult:
    """Outcome of :func:`train`."""

    run_dir: Path
    step: int
    skipped_total: int
    rollbacks: int
    model_path: Path | None
    metrics: dict[str, Any] = field(default_factory=dict)


def train(
    cfg: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    device: str | None = None,
    command: str | None = None,
    batch_hook: BatchHook | None = None,
    progress: bool = True,
    notify: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train the configured model; see the module docstring for the sequence.

    Args:
        cfg: the resolved run config.
        run_dir: output folder (checkpoints, metrics.jsonl, samples/, model.safetensors).
        resume: continue from ``run_dir/checkpoints/last.pt`` (fresh start if there is none).
        device: overrides ``cfg.train.device``.
        command: the command line, appended to ``run_dir/command.txt``.
        batch_hook: ``(step, hr, lr) -> (hr, lr)`` applied to each device batch (tests use it
            to inject faults).
        progress: show the tqdm bar (rank 0).
        notify: receives one-line messages for the user (rank 0): the step a resumed run
            continues from.

    Raises:
        RunDirError: ``run_dir`` already holds a run and ``resume`` is false.
        TrainingDivergedError: non-finite steps persisted through ``max_rollbacks`` rollbacks.
    """
    session = _Session(cfg, Path(run_dir), device, batch_hook)
    session.notify = notify
    try:
        return session.run(resume, command, progress)
    finally:
        session.close()


class _Session:
    """The pieces of one :func:`train` call (one instance per process)."""

    def __init__(
        self, cfg: RunConfig, run_dir: Path, device: str | None, hook: BatchHook | None
    ) -> None:
        self.cfg, self.tc, self.run_dir, self.hook = cfg, cfg.train, run_dir, hook
        self.device = resolve_device(device or cfg.train.device)
        self.ctx = dist.init_from_env(self.device.type)
        configure_backends(self.device, self.tc.tf32)
        self.log: MetricsLog | None = None
        self.notify: Callable[[str], None] | None = None
        self.last_metrics: dict[str, Any] = {}
        self.noise_gen = torch.Generator(device=self.device)
        self.stop = StopRequest()

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        dist.shutdown(self.ctx)

    def _setup(self, resume: bool, command: str | None) -> None:
        cfg, main = self.cfg, self.ctx.is_main
        existing = ckpt.last_checkpoint(self.run_dir)
        if existing is not None and not resume:
            raise RunDirError(f"{self.run_dir}: already holds a run; pass --resume or a new --out")
        if resume and existing is None and (self.run_dir / "metrics.jsonl").is_file():
            raise RunDirError(f"{self.run_dir}: holds a run but no checkpoint to resume from; "
                              "start it again in a new --out")  # fmt: skip
        payload = None
        if existing is not None:
            if main:
                for stale in ckpt.remove_stale_files(self.run_dir):
                    logger.info("removed %s (left by an interrupted run)", stale)
            existing, payload, passed = ckpt.newest_intact(self.run_dir, self.device)
            for problem in passed:
                self._tell(f"skipping {problem}")
        self.dataset, self.val = build_data(cfg, with_validation=main)
        self.model = build_model(cfg, self.device)
        self.objective = build_objective(self.model, cfg, self.device)  # may fail: no run dir yet
        if main:
            prepare_run_dir(self.run_dir, cfg, command)
        used = self.objective.trained_parameters("nll", self.device)
        self.state = TrainingState(cfg, self.model, used, self.device)
        if self.tc.losses.gan:
            from srflow.train.adversarial import Adversary

            self.state.adversary = Adversary(cfg, self.ctx, self.device)
        if self.tc.init_from and existing is None:
            load_init_weights(self.model, self.tc.init_from)
            self.state.actnorm_ready = True  # trained ActNorms are not re-initialised
        if existing is not None and payload is not None:
            check_resumed_config(cfg, payload["config"], existing)
            self.state.restore(payload)
            ckpt.restore_rng_states(payload["rng"])
            if self.notify is not None and main:
                self.notify(f"resuming {self.run_dir} at step {self.state.step} of "
                            f"{self.tc.total_steps} ({existing.name})")  # fmt: skip
            logger.info("resumed %s at step %d", existing, self.state.step)
        if main:
            tb = self.run_dir / "tb" if self.tc.tensorboard else None
            resumed_at = self.state.step if existing is not None else None
            self.log = MetricsLog(self.run_dir / "metrics.jsonl", tb, resumed_at)
            if resumed_at is not None:
                self.log.write("event", resumed_at, event="resumed", checkpoint=existing.name)
        logger.info(
            "training %d steps (%d L1 + %d NLL) on %d images, %s, rank %d/%d, run folder %s",
            self.tc.total_steps, self.tc.l1_pretrain_steps, self.tc.steps,
            len(self.dataset.images), self.device, self.ctx.rank, self.ctx.world_size,
            self.run_dir,
        )  # fmt: skip

    def _tell(self, message: str) -> None:
        """A one-line message for the user (rank 0): through ``notify``, else the log."""
        if self.ctx.is_main:
            (self.notify or logger.warning)(message)

    def _to_device(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, list[int]]:
        hr = batch["hr"].to(self.device, non_blocking=True).float().div_(255.0)
        lr = batch["lr"].to(self.device, non_blocking=True).float().div_(255.0)
        return hr, lr, batch["noise_seed"].tolist()

    def _noise(self, hr: Tensor, seeds: list[int]) -> Tensor:
        return self.objective.noise(tuple(hr.shape[1:]), seeds, self.noise_gen, self.device)

    def _actnorm_init(self) -> None:
        """Glow's data-dependent ActNorm init on the first NLL global batch (every rank)."""
        size = min(self.tc.batch_size, ACTNORM_INIT_MAX_SAMPLES)
        batch = global_batch(self.dataset, self.state.step, size, self.state.rollbacks)
        hr, lr, seeds = self._to_device(batch)
        with data_dependent_init(self.model), torch.no_grad():
            self.objective.initialize_actnorms(hr, lr, self._noise(hr, seeds))
        self.state.actnorm_ready = True

    def _save(self, stage: str) -> None:
        self.state.save(self.run_dir, stage, write=self.ctx.is_main)
        dist.barrier(self.ctx)

    def _run_phase(self, phase: Phase, end: int, pbar: Any) -> None:
        """Train until ``end`` or until a rollback resets the state."""
        tc, state = self.tc, self.state
        stage = "l1" if phase == "l1" else "nll"
        trainable = set_trainable(self.model, phase, state.used_by_nll)
        if stage == "nll" and not state.actnorm_ready:
            if tc.actnorm_init:
                self._actnorm_init()
            state.actnorm_ready = True
        if stage == "nll" and tc.ema_decay and state.ema is None:
            state.ema = ModelEMA(self.model, tc.ema_decay)
        if stage == "nll":
            state.optimizers.pop("l1", None)  # free the L1 Adam moments
        optimizer = state.optimizer(stage)
        if state.last_saved != state.step:
            self._save(stage)  # a rollback target at every phase start
        loss_fn = dist.wrap(self.objective, self.ctx, self.device)
        if tc.compile:
            loss_fn = torch.compile(loss_fn)
        loader = make_loader(
            self.dataset, self.cfg, self.ctx, state.step, end, state.rollbacks, self.device
        )
        clip = tc.grad_clip_norm or float("inf")
        adversary = state.adversary
        totals = torch.zeros(3, device=self.device)  # loss sum, grad-norm sum, good steps
        since, tick = state.step, time.perf_counter()
        for batch in loader:
            hr, lr, seeds = self._to_device(batch)
            if self.hook is not None:
                hr, lr = self.hook(state.step, hr, lr)
            noise = self._noise(hr, seeds) if stage == "nll" else None
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(state.step, tc, state.lr_scale)
            latents = self.objective.draw_latents(lr, seeds, self.noise_gen)
            warming_up = adversary is not None and state.step < adversary.warmup
            optimizer.zero_grad(set_to_none=True)
            with torch.set_grad_enabled(not warming_up):  # only D trains while warming up
                loss = loss_fn(hr, lr, noise, stage, *latents).mean()
                if adversary is not None and not warming_up:
                    loss = loss + adversary.generator_term(self.objective.sample).mean()
            if warming_up:
                grad_norm = torch.zeros((), device=self.device)
            else:
                loss.backward()
                if tc.grad_clip_value:
                    torch.nn.utils.clip_grad_value_(trainable, tc.grad_clip_value, foreach=True)
                grad_norm = torch.nn.utils.clip_grad_norm_(trainable, clip, foreach=True)
            bad = dist.any_rank(NonFiniteGuard.is_bad(loss.detach(), grad_norm), self.ctx)
            if not warming_up:
                optimizer_step(optimizer, bad)  # cancelled on the device when bad
            if adversary is not None:
                adversary.step(hr, self.objective.sample, state.step)
            state.guard.record(state.step, bad)
            if state.ema is not None and stage == "nll":
                state.ema.update(self.model, keep=1.0 - bad)
            good = bad < 0.5
            totals += torch.stack([torch.where(good, loss.detach(), 0.0),
                                   torch.where(good, grad_norm, 0.0), good.float()])  # fmt: skip
            state.step += 1
            pbar.update(1)
            step = state.step
            at_log = step % tc.log_every == 0 or step == end
            at_ckpt = bool(tc.checkpoint_every) and step % tc.checkpoint_every == 0
            if at_log or at_ckpt:
                report = state.guard.check()
                if report.skipped:
                    logger.warning("%d non-finite step(s) skipped up to step %d (total %d)",
                                   report.skipped, step, state.guard.skipped_total)  # fmt: skip
                if report.tripped:
                    state.rollback(self.run_dir, report.in_window, self.log)
                    pbar.n = state.step
                    pbar.refresh()
                    return
                if at_log:
                    now = time.perf_counter()
                    self._log_train(step, phase, totals, (step - since) / (now - tick), pbar)
                    totals.zero_()
                    since, tick = step, now
                if at_ckpt:
                    self._save(stage)
            if self.stop.should_stop(at_log, self.ctx, self.device):
                if state.last_saved != step:
                    self._save(stage)
                last = ckpt.checkpoint_dir(self.run_dir) / ckpt.LAST
                raise TrainingInterrupted(self.run_dir, step, last)
            at_val = bool(tc.val_every) and step % tc.val_every == 0
            if stage == "nll" and at_val and step != tc.total_steps:
                self._validate(step)

    def _log_train(self, step: int, phase: str, totals: Tensor, rate: float, pbar: Any) -> None:
        loss_sum, norm_sum, good = dist.mean_over_ranks(totals, self.ctx).tolist()
        loss = loss_sum / good if good else float("nan")
        values = {
            "stage": phase, "loss": loss,
            "bits_per_dim": loss if self._loss_is_bpd(phase) else None,
            "lr": learning_rate(step - 1, self.tc, self.state.lr_scale),
            "grad_norm": norm_sum / good if good else float("nan"), "it_per_s": rate,
            "skipped_total": self.state.guard.skipped_total,
        }  # fmt: skip
        self.last_metrics.update({k: v for k, v in values.items() if v is not None})
        if self.log is not None:
            self.log.write("train", step, **values)
            key = "l1" if phase == "l1" else "bpd" if self._loss_is_bpd(phase) else "loss"
            skipped = self.state.guard.skipped_total
            pbar.set_postfix({key: f"{loss:.4f}", "skip": skipped}, refresh=False)

    def _loss_is_bpd(self, phase: str) -> bool:
        """The logged loss is the NLL in bits per dimension."""
        objective = self.objective
        return phase != "l1" and objective.loss_is_nll and objective.nll_unit == "bits/dim"

    def _eval_model(self) -> FlowSR:
        ema = self.state.ema
        return ema.module if ema is not None else self.model  # type: ignore[return-value]

    def _validate(self, step: int) -> None:
        if self.val is not None:
            metrics = validate(
                self._eval_model(), self.val, temperatures=self.tc.val_temperatures,
                seed=self.tc.seed, device=self.device, objective=self.objective,
                grid_path=self.run_dir / "samples" / f"step_{step:08d}.png",
                grid_images=self.cfg.data.val_grid_images,
            )  # fmt: skip
            logger.info("validation at step %d: %s", step, metrics)
            self.last_metrics.update({f"val_{k}": v for k, v in metrics.items()})
            if self.log is not None:
                self.log.write("val", step, **metrics)
        dist.barrier(self.ctx)

    def run(self, resume: bool, command: str | None, progress: bool) -> TrainResult:
        self._setup(resume, command)
        tc, state = self.tc, self.state
        pbar = progress_bar(state.step, tc.total_steps, progress and self.ctx.is_main)
        tell = (self.notify or logger.warning) if self.ctx.is_main else None
        try:
            with stop_on_interrupt(tell) as self.stop:
                while state.step < tc.total_steps:
                    self._run_phase(phase_at(state.step, tc), phase_end(state.step, tc), pbar)
        finally:
            pbar.close()
        stage = "l1" if phase_at(max(state.step - 1, 0), tc) == "l1" else "nll"
        if state.last_saved != state.step:
            self._save(stage)
        if stage == "nll":
            self._validate(state.step)
        model_path = None
        if self.ctx.is_main:
            model = self._eval_model()
            model.trained_temperature = trained_temperature(tc.losses)
            model_path = save_model(model, self.run_dir / "model.safetensors")
            logger.info("exported %s", model_path)
        dist.barrier(self.ctx)
        skipped = state.guard.skipped_total
        return TrainResult(self.run_dir, state.step, skipped, state.rollbacks, model_path,
                           dict(self.last_metrics))  # fmt: skip
