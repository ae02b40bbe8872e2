"""HCFlow training: the loss terms, NLL from scratch, init_from, and a rescaling round trip."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from srflow.checkpoints import load_model
from srflow.cli.main import main
from srflow.config.loading import ConfigError
from srflow.config.losses import LossWeights
from srflow.data.resize import imresize
from srflow.data.transforms import quantize_8bit
from srflow.families.hcflow_objective import HCFlowObjective
from srflow.metrics.psnr_ssim import psnr
from srflow.models.hcflow import HCFlow
from srflow.models.hcflow_config import HCFlowConfig
from srflow.train.config import RunConfig, load_run_config
from srflow.train.loop import train
from test_train import _ddp_worker, _free_port

skimage_data = pytest.importorskip("skimage.data")
PHOTOS = ("astronaut", "chelsea", "coffee")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real photographs (scikit-image's bundled images) as PNG files."""
    root = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        Image.fromarray(getattr(skimage_data, name)()).save(root / f"{name}.png")
    return root


def tiny(photos: Path, *overrides: str) -> RunConfig:
    return load_run_config("train_hcflow_tiny", [f"data.train_hr={photos}", *overrides])


def losses_logged(run_dir: Path) -> list[float]:
    rows = map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
    return [r["loss"] for r in rows if r["kind"] == "train"]


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hr = torch.rand(2, 3, 16, 16, generator=g)
    return hr, imresize(hr, scale=0.25)


def test_each_loss_term_is_what_the_spec_says() -> None:
    config = tiny(Path("."), "model.task=rescale").model
    assert isinstance(config, HCFlowConfig)
    model = HCFlow(config)
    hr, lr = batch()
    noise = torch.rand_like(hr)
    latents = HCFlowObjective(model, LossWeights(reconstruction=1.0)).draw_latents(
        lr, [3, 4], torch.Generator()
    )
    enc = model.encode(hr, lr, noise=noise)

    def term(**weights: float) -> torch.Tensor:
        objective = HCFlowObjective(model, LossWeights(**{"nll": 0.0, **weights}))
        return objective(hr, lr, noise, "nll", *latents)

    torch.testing.assert_close(term(nll=2.0), 2.0 * enc.nll)
    clean = model.encode(hr, lr)
    torch.testing.assert_close(term(lr=1.0), (clean.y.clamp(0, 1) - lr).pow(2).mean((1, 2, 3)))
    z = torch.cat([clean.latents[0].flatten(1), clean.latents[1].flatten(1)], 1)
    torch.testing.assert_close(term(latent=1.0), z.pow(2).mean(1))  # by element count
    means = [torch.zeros_like(v) for v in latents]
    l1 = (model.decode(lr, means)[0].clamp(0, 1) - hr).abs().mean((1, 2, 3))
    torch.testing.assert_close(term(l1=1.0), l1)
    recon = model.decode(quantize_8bit(clean.y), [0.5 * v for v in latents])[0].clamp(0, 1)
    expected = (recon - hr).abs().mean((1, 2, 3))
    torch.testing.assert_close(term(reconstruction=1.0, sample_temperature=0.5), expected)


def test_latents_depend_on_each_sample_seed_alone() -> None:
    model = HCFlow(tiny(Path(".")).model)
    objective = HCFlowObjective(model, LossWeights(reconstruction=1.0))
    _, lr = batch()
    both = objective.draw_latents(lr, [7, 8], torch.Generator())
    second = objective.draw_latents(lr[1:], [8], torch.Generator())
    assert all(torch.equal(a[1:], b) for a, b in zip(both, second, strict=True))
    assert HCFlowObjective(model, LossWeights()).draw_latents(lr, [7, 8], torch.Generator()) == []


def test_straight_through_quantization_passes_gradients() -> None:
    y = torch.tensor([0.3, 0.7, 1.2], requires_grad=True)
    q = quantize_8bit(y)
    assert torch.equal(q.detach(), torch.round(y.detach().clamp(0, 1) * 255) / 255)
    q.sum().backward()
    assert torch.equal(y.grad, torch.ones(3))


def test_nll_from_scratch_decreases_and_exports(photos: Path, tmp_path: Path) -> None:
    cfg = tiny(photos, "train.steps=40", "train.log_every=10", "train.checkpoint_every=0",
               "train.lr_milestones=[1.0]", f"data.val_hr={photos}", "data.val_crop=64",
               "train.val_every=10")  # fmt: skip
    result = train(cfg, tmp_path / "run", progress=False)
    losses = losses_logged(tmp_path / "run")
    assert result.step == 40 and all(math.isfinite(v) for v in losses)
    # the NLL of the same validation crops (fixed noise) after 10 and after 40 steps: mostly
    # the LR term, the trunk learns bicubic (the training loss itself varies from batch to
    # batch by more than 40 steps of learning: 0.65-0.96 of its first value over 5 seeds)
    rows = map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
    nll = [r["nll_bpd"] for r in rows if r["kind"] == "val"]
    assert len(nll) == 4 and nll[-1] < 0.95 * nll[0], nll
    model = load_model(tmp_path / "run" / "model.safetensors")
    assert isinstance(model, HCFlow) and model.config == cfg.model
    biases = [p for n, p in model.named_parameters() if n.endswith("actnorm.bias")]
    assert biases and all(b.abs().sum() > 0 for b in biases)  # data-dependent init ran


def test_init_from_starts_from_the_weights_without_actnorm_init(
    photos: Path, tmp_path: Path
) -> None:
    first = tiny(photos, "train.steps=4", "train.checkpoint_every=0")
    train(first, tmp_path / "stage1", progress=False)
    source = load_file(tmp_path / "stage1" / "model.safetensors")
    plus = tiny(photos, "train.steps=1", "train.lr=1e-30", "train.checkpoint_every=0",
                f"train.init_from={tmp_path / 'stage1' / 'model.safetensors'}",
                "train.losses={nll: 2.0e-3, l1: 1.0}")  # fmt: skip
    train(plus, tmp_path / "stage2", progress=False)
    after = load_file(tmp_path / "stage2" / "model.safetensors")
    for name, value in source.items():
        torch.testing.assert_close(after[name], value, rtol=0, atol=1e-20)
    other = tiny(photos, "train.steps=1", "model.hidden_channels=4",
                 f"train.init_from={tmp_path / 'stage1' / 'model.safetensors'}")  # fmt: skip
    with pytest.raises(ValueError, match="another model configuration"):
        train(other, tmp_path / "stage3", progress=False)


def test_config_errors_name_the_key(photos: Path) -> None:
    with pytest.raises(ConfigError, match="SRFlow models train with the NLL alone"):
        load_run_config("train_tiny", ["train.losses.l1=1"])
    with pytest.raises(ConfigError, match="HCFlow has no L1 pre-training"):
        tiny(photos, "train.l1_pretrain_steps=5")
    with pytest.raises(ConfigError, match="vgg19_weights"):
        tiny(photos, "train.losses.feature=0.05")
    with pytest.raises(ConfigError, match="unknown key 'model.trunk_step'"):
        tiny(photos, "model.trunk_step=2")


def test_ddp_two_gloo_processes_match_single_process(photos: Path, tmp_path: Path) -> None:
    """Rescaling with sampled reconstructions: each image's latents come from its own seed,
    so 2 ranks x 2 samples train as 1 process x 4 (eps as in the SRFlow DDP test)."""
    cfg = tiny(photos, "model.task=rescale", "train.steps=4", "train.checkpoint_every=0",
               "train.adam_eps=1e-4", "train.losses={nll: 0, lr: 0.05, latent: 1.0e-5, "
               "reconstruction: 1.0, sample_temperature: 0.5}")  # fmt: skip
    torch.multiprocessing.spawn(_ddp_worker, args=(cfg, tmp_path / "ddp", _free_port()),
                                nprocs=2, join=True)  # fmt: skip
    train(cfg, tmp_path / "single", progress=False)
    ddp = load_file(tmp_path / "ddp" / "model.safetensors")
    single = load_file(tmp_path / "single" / "model.safetensors")
    worst = max((ddp[k] - v).abs().max().item() for k, v in single.items())
    assert worst < 1e-5, worst


@pytest.mark.slow
def test_rescaling_round_trip_beats_bicubic(photos: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """The tiny rescaling recipe (docs/rescaling.md): `rescale down` to 8-bit PNGs, then
    `rescale up`, reconstructs the photos better than bicubic down + bicubic up."""
    cfg = load_run_config("train_hcflow_rescale_tiny", [f"data.train_hr={photos}"])
    train(cfg, tmp_path / "run", progress=False)
    model = str(tmp_path / "run" / "model.safetensors")
    down = ["rescale", "down", str(photos), "-o", str(tmp_path / "lr"), "--model", model]
    assert main(down) == 0
    # the model file records the temperature its recipe reconstructs at: `rescale up` uses it
    assert load_model(model).trained_temperature == cfg.train.losses.sample_temperature == 0
    up = ["rescale", "up", str(tmp_path / "lr"), "-o", str(tmp_path / "hr"), "--model", model,
          "-t", "0"]  # fmt: skip
    assert main(up[:-2]) == 0
    assert "decoding at temperature 0, the one this model was trained" in capsys.readouterr().err
    ours, bicubic = [], []
    for name in PHOTOS:
        hr = np.asarray(Image.open(photos / f"{name}.png").convert("RGB"))
        round_trip = np.asarray(Image.open(tmp_path / "hr" / f"{name}_x4_up.png"))
        assert round_trip.shape == hr.shape
        h, w = (s - s % 4 for s in hr.shape[:2])
        ours.append(psnr(round_trip[:h, :w], hr[:h, :w], crop_border=4))
        bicubic_lr = imresize(hr[:h, :w], scale=0.25)
        bicubic.append(psnr(imresize(bicubic_lr, scale=4), hr[:h, :w], crop_border=4))
    assert np.mean(ours) > np.mean(bicubic) + 0.1, (ours, bicubic)
    # at the published model's temperature this recipe's untrained latent noise swamps the
    # image: every output is named (the flow's own LR check) and the command exits 3
    hot = [*up[:4], str(tmp_path / "hot"), *up[5:-1], "1.0"]
    assert main(hot) == 3
    err = capsys.readouterr().err
    named = [line for line in err.splitlines() if "not consistent with its input" in line]
    assert len(named) == len(PHOTOS) and all(line.startswith("warning: ") for line in named)
