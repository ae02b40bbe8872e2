"""Typed, frozen schemas of a training run's ``data:`` and ``train:`` sections.

A run config (:class:`srflow.train.config.RunConfig`) is one YAML file with three sections:
``model:`` (a model configuration tagged with its family), ``data:`` (:class:`DataConfig`) and
``train:`` (:class:`TrainConfig`).

Notes on the published recipe (SRFlow, ECCV 2020, and its ``code/confs/*.yml``):

* Adam with betas ``(0.9, 0.999)``: the original passes ``beta1: 0.9, beta2: 0.99`` under keys
  that ``torch.optim.Adam`` ignores, so the defaults were what it actually trained with.
* lr ``5e-4`` (paper; the published DF2K 4x yml says 2.5e-4 at batch 12), halved at 50/75/90/95%
  of 200k iterations, no weight decay, no warm-up, batch 16 of 160x160 HR patches.
* The original applies no gradient clipping; we clip the global norm at ``grad_clip_norm``
  (default 100, far above the norms of healthy steps) as a guard against rare spikes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from srflow.config.loading import ConfigValueError
from srflow.config.losses import LossWeights


@dataclass(frozen=True)
class DataConfig:
    """Training and validation images.

    Attributes:
        train_hr: folder (searched recursively) or file of HR training images, any common format.
        train_lr: optional folder of LR images paired with ``train_hr`` by relative path (suffix
            may differ); each must be exactly ``1/scale`` of its modcropped HR. Without it, LR
            patches are made from the uint8 HR patch by MATLAB-compatible bicubic.
        val_hr: optional folder of HR validation images (LR made by bicubic).
        patch_size: HR training patch side (the LR patch is ``patch_size / scale``).
        flips: random horizontal flips.
        rotations: random 90-degree rotations (with flips: the 8 dihedral transforms).
        channel_shuffle: random permutation of the RGB channels (the same for HR and LR; not in
            the original recipes): the flow must take every colour from the LR, which removes
            colour casts of models trained on few photographs.
        cache_max_mb: decode every image once and keep the uint8 arrays in memory when they take
            at most this many MiB in total (0: never cache, decode per patch).
        workers: DataLoader worker processes (0: load in the main process).
        skip_bad_images: train on the readable images of ``train_hr`` when some cannot be
            read (named in warnings); by default the run stops before its first step with
            one line naming every unreadable file.
        val_crop: HR centre-crop side for validation images (0: whole image, modcropped).
        val_max_images: use at most this many validation images (sorted by path).
        val_grid_images: validation images shown in the saved sample grid.
    """

    train_hr: str = ""
    train_lr: str | None = None
    val_hr: str | None = None
    patch_size: int = 160
    flips: bool = True
    rotations: bool = True
    channel_shuffle: bool = False
    cache_max_mb: int = 4096
    workers: int = 4
    skip_bad_images: bool = False
    val_crop: int = 256
    val_max_images: int = 8
    val_grid_images: int = 4

    def validate(self) -> None:
        """Check ranges; raise :class:`ConfigValueError` on a bad value."""
        if self.patch_size < 1 or self.val_crop < 0 or self.cache_max_mb < 0 or self.workers < 0:
            raise ConfigValueError("data: patch_size >= 1, val_crop/cache_max_mb/workers >= 0")
        if self.val_max_images < 1 or self.val_grid_images < 0:
            raise ConfigValueError("data: val_max_images >= 1 and val_grid_images >= 0")


@dataclass(frozen=True)
class TrainConfig:
    """Optimization, schedule, reliability and logging of a run.

    Attributes:
        seed: seeds the weights, the data order, crops, augmentations and dequantization noise.
        batch_size: global batch (split evenly over distributed ranks).
        l1_pretrain_steps: stage 1, L1 loss of the encoder's own SR output (encoder only).
        steps: stage 2, NLL iterations of the full model (the schedule's 100%).
        lr: Adam learning rate of the NLL stage.
        l1_lr: Adam learning rate of the L1 stage (same relative milestones).
        betas: Adam betas (the original effectively used the defaults, see module doc).
        adam_eps: Adam epsilon (the default 1e-8, as the original).
        weight_decay: L2 weight decay (0 in the published configs).
        lr_milestones: fractions of a stage's steps at which the lr is multiplied by ``lr_gamma``.
        lr_gamma: multiplicative lr decay at each milestone.
        encoder_freeze_fraction: the encoder is frozen for this first fraction of NLL steps
            (the original's ``train_RRDB_delay``).
        grad_clip_norm: clip the global gradient norm to this value (0: no clipping).
        grad_clip_value: first clip every gradient element to ``[-v, v]`` (0: off; HCFlow 5).
        losses: the loss terms and their weights (HCFlow's stages; SRFlow: the NLL alone).
        actnorm_init: Glow's data-dependent ActNorm init on the first NLL-stage batch (as
            every original recipe); off, the ActNorms start as the identity (the tiny
            rescaling recipe: its Haar low-pass then starts as an image).
        init_from: start from this model's weights (ours or a published ``.pth`` of the
            same configuration), e.g. HCFlow+ from an HCFlow model; ActNorms count as
            initialised.
        ema_decay: exponential moving average of the weights (0: off). When on, the EMA weights
            are validated and exported.
        max_nonfinite: non-finite (skipped) steps within ``nonfinite_window`` steps that trigger
            a rollback to the last checkpoint with the lr scaled by ``rollback_lr_factor``.
        nonfinite_window: window of the non-finite budget, in steps.
        max_rollbacks: give up (error) after this many rollbacks.
        rollback_lr_factor: lr multiplier applied at every rollback.
        log_every: steps between metrics lines (and guard checks).
        val_every: steps between validations (0: only at the end).
        checkpoint_every: steps between checkpoints (0: only at stage ends and the end).
        keep_checkpoints: numbered checkpoints kept besides ``last.pt`` (0: only last).
        val_temperatures: temperatures of the validation samples (PSNR, LR-PSNR, grid).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        tf32: allow TF32 matmuls/convolutions on CUDA.
        compile: ``torch.compile`` the loss (CUDA: about 1.7x faster steps for the DF2K 4x
            model on an H100, after about 200 s of compilation per phase; off by default).
        tensorboard: also log to TensorBoard (needs the ``tensorboard`` extra).
    """

    seed: int = 0
    batch_size: int = 16
    l1_pretrain_steps: int = 0
    steps: int = 200_000
    lr: float = 5e-4
    l1_lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    lr_milestones: tuple[float, ...] = (0.5, 0.75, 0.9, 0.95)
    lr_gamma: float = 0.5
    encoder_freeze_fraction: float = 0.0
    grad_clip_norm: float = 100.0
    grad_clip_value: float = 0.0
    losses: LossWeights = field(default_factory=LossWeights)
    actnorm_init: bool = True
    init_from: str | None = None
    ema_decay: float = 0.0
    max_nonfinite: int = 10
    nonfinite_window: int = 100
    max_rollbacks: int = 3
    rollback_lr_factor: float = 0.5
    log_every: int = 50
    val_every: int = 5000
    checkpoint_every: int = 5000
    keep_checkpoints: int = 2
    val_temperatures: tuple[float, ...] = (0.0, 0.8)
    device: str = "auto"
    tf32: bool = True
    compile: bool = False
    tensorboard: bool = False

    def validate(self) -> None:
        """Check ranges; raise :class:`ConfigValueError` on a bad value."""
        if self.batch_size < 1 or self.steps < 0 or self.l1_pretrain_steps < 0:
            raise ConfigValueError("train: batch_size >= 1, steps and l1_pretrain_steps >= 0")
        if self.steps + self.l1_pretrain_steps < 1:
            raise ConfigValueError("train: steps + l1_pretrain_steps must be >= 1")
        if (
            min(self.lr, self.l1_lr, self.adam_eps) <= 0
            or self.weight_decay < 0
            or min(self.grad_clip_norm, self.grad_clip_value) < 0
        ):
            raise ConfigValueError(
                "train: lr, l1_lr, adam_eps > 0; weight_decay, grad_clip_norm/_value >= 0"
            )
        if not all(0.0 <= b < 1.0 for b in self.betas) or not 0.0 <= self.ema_decay < 1.0:
            raise ConfigValueError("train: betas and ema_decay must lie in [0, 1)")
        if not all(0.0 < m <= 1.0 for m in self.lr_milestones) or not 0 < self.lr_gamma <= 1:
            raise ConfigValueError("train: lr_milestones in (0, 1], lr_gamma in (0, 1]")
        if not 0.0 <= self.encoder_freeze_fraction <= 1.0:
            raise ConfigValueError("train.encoder_freeze_fraction must lie in [0, 1]")
        if self.max_nonfinite < 1 or self.nonfinite_window < self.max_nonfinite:
            raise ConfigValueError("train: max_nonfinite >= 1 and nonfinite_window >= it")
        if self.max_rollbacks < 0 or not 0 < self.rollback_lr_factor <= 1:
            raise ConfigValueError("train: max_rollbacks >= 0, rollback_lr_factor in (0, 1]")
        if self.log_every < 1 or self.val_every < 0 or self.checkpoint_every < 0:
            raise ConfigValueError("train: log_every >= 1, val_every/checkpoint_every >= 0")
        if self.keep_checkpoints < 0 or any(t < 0 for t in self.val_temperatures):
            raise ConfigValueError("train: keep_checkpoints and val_temperatures must be >= 0")

    @property
    def total_steps(self) -> int:
        """L1 steps plus NLL steps."""
        return self.l1_pretrain_steps + self.steps
