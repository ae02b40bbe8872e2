"""The GAN of HCFlow++: a VGG-style discriminator, its optimizer and its step.

Per iteration the generator's loss gains ``gan * BCE(D(sample), 1)`` (the discriminator
frozen for it), then the discriminator takes one Adam step on ``BCE(D(hr), 1) +
BCE(D(sample), 0)`` with the sample detached (vanilla GAN, the original's order). For the
first ``discriminator_warmup`` steps of a run only the discriminator is updated (the
original's ``D_init_iters``). Its learning rate follows the model's milestones.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from srflow.train import distributed as dist
from srflow.train.config import RunConfig
from srflow.train.discriminator import (
    VGGStyleDiscriminator,
    discriminator_loss,
    generator_gan_loss,
)
from srflow.train.guard import NonFiniteGuard, optimizer_step
from srflow.train.schedule import multistep_factor


class Adversary:
    """The discriminator of a run (on every rank; gradients averaged over ranks)."""

    def __init__(self, cfg: RunConfig, ctx: dist.DistContext, device: torch.device) -> None:
        tc, losses = cfg.train, cfg.train.losses
        self.cfg, self.weight, self.warmup = cfg, losses.gan, losses.discriminator_warmup
        generator = torch.Generator().manual_seed(tc.seed + 1)
        self.module = VGGStyleDiscriminator(input_size=cfg.data.patch_size, generator=generator)
        self.module.to(device).train()
        self.ctx = ctx
        self.optimizer = torch.optim.Adam(
            self.module.parameters(), lr=losses.discriminator_lr, betas=tc.betas,
            eps=tc.adam_eps, fused=device.type in ("cuda", "cpu"),
        )  # fmt: skip

    def generator_term(self, sample: Tensor) -> Tensor:
        """``gan * BCE(D(sample), 1)`` per sample; the discriminator gets no gradient."""
        self.module.requires_grad_(False)
        try:
            return self.weight * generator_gan_loss(self.module(sample))
        finally:
            self.module.requires_grad_(True)

    def step(self, hr: Tensor, sample: Tensor, step: int) -> Tensor:
        """One discriminator update at global ``step``; returns its loss (0-d, on the device);
        a non-finite loss or gradient cancels the update."""
        tc = self.cfg.train
        factor = multistep_factor(step, tc.steps, tc.lr_milestones, tc.lr_gamma)
        for group in self.optimizer.param_groups:
            group["lr"] = tc.losses.discriminator_lr * factor
        self.optimizer.zero_grad(set_to_none=True)
        real = self.module(hr)  # two passes (batch-norm statistics per kind, as the original)
        fake = self.module(sample.detach())
        loss = discriminator_loss(real, fake).mean()
        loss.backward()
        params = list(self.module.parameters())
        dist.average_gradients(params, self.ctx)
        if tc.grad_clip_value:
            torch.nn.utils.clip_grad_value_(params, tc.grad_clip_value)
        norm = torch.nn.utils.clip_grad_norm_(params, tc.grad_clip_norm or float("inf"))
        bad = dist.any_rank(NonFiniteGuard.is_bad(loss.detach(), norm), self.ctx)
        optimizer_step(self.optimizer, bad)
        return loss.detach()

    def state_dict(self) -> dict[str, Any]:
        """Weights and optimizer state (for training checkpoints)."""
        return {"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
