"""HCFlow through the super-resolution pipeline: samples, seeds, tiling, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srflow.checkpoints import save_model
from srflow.cli.main import main
from srflow.inference.pipeline import SuperResolver
from srflow.models.hcflow import HCFlow
from srflow.models.hcflow_config import HCFlowConfig

skimage_data = pytest.importorskip("skimage.data")

TINY = HCFlowConfig(
    levels=2, trunk_steps=2, conditional_steps=1, rrdb_blocks=(1, 1), rrdb_growth=8,
    hidden_channels=8,
)  # fmt: skip


def tiny_hcflow(seed: int = 0) -> HCFlow:
    torch.manual_seed(seed)
    model = HCFlow(TINY)
    noise = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # off the zero init, so that every layer acts
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.02 * torch.randn(p.shape, generator=noise))
    return model.eval()


def test_resolver_equals_the_model_sampler_and_reuses_the_lr_features() -> None:
    model = tiny_hcflow()
    lr = torch.rand(1, 3, 6, 8)
    ours = SuperResolver(model).super_resolve(lr[0], temperature=0.7, samples=3, seed=5)
    direct = model.sample(lr, 0.7, 3, torch.Generator().manual_seed(5))[:, 0]
    torch.testing.assert_close(ours, direct, atol=1e-5, rtol=0)
    # decoding 3 samples against one conditioning = repeating the LR per sample
    latents = model.sample_latents(model.latent_shapes(lr, 3), 0.7, torch.Generator())
    shared, _ = model.decode(model.prepare(lr), latents)
    repeated, _ = model.decode(lr.repeat(3, 1, 1, 1), latents)
    torch.testing.assert_close(shared, repeated, atol=1e-5, rtol=0)


def test_temperature_zero_gives_the_predicted_mean_whatever_the_seed() -> None:
    model = tiny_hcflow()
    lr = torch.rand(3, 6, 8)
    resolver = SuperResolver(model)
    a = resolver.super_resolve(lr, temperature=0.0, samples=1, seed=1)
    b = resolver.super_resolve(lr, temperature=0.0, samples=1, seed=2)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    c = resolver.super_resolve(lr, temperature=0.9, samples=1, seed=1)
    assert (c - a).abs().max() > 1e-3


def test_sr_command(tmp_path: Path, capsys) -> None:
    model = save_model(tiny_hcflow(), tmp_path / "hcflow.safetensors")
    photo = skimage_data.astronaut()[100:132, 180:220]  # 40x32 LR
    Image.fromarray(photo).save(tmp_path / "lr.png")
    args = ["sr", str(tmp_path / "lr.png"), "--model", str(model), "-t", "0.8", "-n", "2",
            "--seed", "3", "--device", "cpu"]  # fmt: skip
    # the random model's inverse diverges on a few values: written, warned, exit status 3
    assert main([*args, "-o", str(tmp_path / "a")]) == 3
    assert "HCFlow 4x (custom configuration)" in capsys.readouterr().out
    a0 = np.asarray(Image.open(tmp_path / "a" / "lr_sr_t0.80_s00.png")).astype(int)
    a1 = np.asarray(Image.open(tmp_path / "a" / "lr_sr_t0.80_s01.png")).astype(int)
    assert a0.shape == (128, 160, 3) and (a0 != a1).any()
    assert main([*args, "-o", str(tmp_path / "tiled"), "--tile", "16"]) == 3
    tiled = np.asarray(Image.open(tmp_path / "tiled" / "lr_sr_t0.80_s00.png")).astype(int)
    assert np.abs(tiled - a0).mean() < 2.0  # one latent field: tiling changes only seams
