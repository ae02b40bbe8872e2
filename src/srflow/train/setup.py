"""Building blocks of a run: device, run folder, data, optimizers, trainable parameters."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from srflow.config.loading import ConfigError, dump_yaml, to_dict
from srflow.data.datasets import ImageCollection, StepSampler, TrainPatches, ValidationImages
from srflow.families import config_from_dict
from srflow.train.config import RunConfig
from srflow.train.distributed import DistContext
from srflow.train.schedule import Phase

logger = logging.getLogger(__name__)


class RunDirError(OSError):
    """The run folder cannot be used as asked (one line naming it)."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda:LOCAL_RANK`` when CUDA is available, else ``cpu``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def configure_backends(device: torch.device, tf32: bool) -> None:
    """cuDNN autotuning and (optionally) TF32 on CUDA; nothing on the CPU."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


def prepare_run_dir(run_dir: Path, cfg: RunConfig, command: str | None) -> None:
    """Create the folder; write ``config.yaml`` (resolved) and append to ``command.txt``."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"{run_dir}: cannot create run folder ({exc.strerror})") from None
    dump_yaml(cfg, run_dir / "config.yaml")
    if command is not None:
        with (run_dir / "command.txt").open("a", encoding="utf-8") as f:
            f.write(command + "\n")


def set_trainable(model: nn.Module, phase: Phase, used_by_nll: set[str]) -> list[nn.Parameter]:
    """Set ``requires_grad`` for ``phase`` and return the trainable parameters.

    ``l1``: the whole encoder. ``nll_frozen``: the flow only. ``nll``: every parameter the
    NLL uses (the encoder's SR-only head, e.g. ``hr_conv``/``conv_last``, stays frozen).
    """
    trainable = []
    for name, param in model.named_parameters():
        if phase == "l1":
            flag = name.startswith("encoder.")
        elif phase == "nll_frozen":
            flag = name in used_by_nll and not name.startswith("encoder.")
        else:
            flag = name in used_by_nll
        param.requires_grad_(flag)
        if flag:
            trainable.append(param)
    return trainable


def build_optimizer(
    model: nn.Module, stage: str, cfg: RunConfig, used_by_nll: set[str], device: torch.device
) -> torch.optim.Adam:
    """Adam for a stage, its parameter groups created once.

    ``l1``: one group, the encoder. ``nll``: group 0 the flow, group 1 the encoder parameters
    the NLL uses (no gradient, hence no update, while frozen). Fused kernels are used where
    available: they also let a non-finite step be cancelled on the device.
    """
    tc = cfg.train
    named = list(model.named_parameters())
    if stage == "l1":
        groups = [{"params": [p for n, p in named if n.startswith("encoder.")]}]
        lr = tc.l1_lr
    else:
        flow = [p for n, p in named if n in used_by_nll and not n.startswith("encoder.")]
        encoder = [p for n, p in named if n in used_by_nll and n.startswith("encoder.")]
        groups = [{"params": flow}, {"params": encoder}]
        lr = tc.lr
    fused = device.type in ("cuda", "cpu")
    return torch.optim.Adam(
        groups, lr=lr, betas=tc.betas, eps=tc.adam_eps, weight_decay=tc.weight_decay, fused=fused
    )


def make_loader(
    dataset: TrainPatches, cfg: RunConfig, ctx: DistContext, start: int, end: int,
    stream: int, device: torch.device,
) -> DataLoader:  # fmt: skip
    """Loader of this rank's shards of global batches ``start .. end - 1``."""
    sampler = StepSampler(
        start, end, cfg.train.batch_size, rank=ctx.rank, world_size=ctx.world_size, stream=stream
    )
    workers = cfg.data.workers
    return DataLoader(
        dataset,
        batch_size=sampler.per_rank,
        sampler=sampler,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
        generator=torch.Generator().manual_seed(cfg.train.seed),
    )


def check_resumed_config(cfg: RunConfig, saved: dict[str, Any], path: Path) -> None:
    """The model must match the checkpoint's; changed data/train keys are logged."""
    current = to_dict(cfg)
    try:
        same = config_from_dict(saved["model"]) == cfg.model
    except ConfigError:
        same = False
    if not same:
        raise ConfigError(f"{path}: the checkpoint's model config differs from this config")
    for section in ("data", "train"):
        now, then = current[section], saved[section]
        changed = sorted(k for k in now if then.get(k) != now[k])
        if changed:
            logger.warning("resuming with changed %s settings: %s", section, ", ".join(changed))


def build_data(
    cfg: RunConfig, with_validation: bool
) -> tuple[TrainPatches, ValidationImages | None]:
    """The training patch dataset and (if configured and wanted) the validation images."""
    data, scale = cfg.data, cfg.model.scale
    images = ImageCollection(
        data.train_hr, data.train_lr, scale=scale, min_size=data.patch_size,
        cache_max_mb=data.cache_max_mb, skip_bad=data.skip_bad_images,
    )  # fmt: skip
    patches = TrainPatches(
        images, patch_size=data.patch_size, seed=cfg.train.seed, flips=data.flips,
        rotations=data.rotations, channel_shuffle=data.channel_shuffle,
    )  # fmt: skip
    val = None
    if data.val_hr and with_validation:
        val = ValidationImages(
            data.val_hr, scale=scale, multiple=cfg.model.size_multiple_lr, crop=data.val_crop,
            max_images=data.val_max_images,
        )  # fmt: skip
    return patches, val
