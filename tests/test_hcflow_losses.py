"""HCFlow++'s VGG19 feature loss and GAN: layout, weight loading, errors, a tiny run."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

from srflow.cli.main import main
from srflow.train.config import load_run_config
from srflow.train.discriminator import (
    VGGStyleDiscriminator,
    discriminator_loss,
    generator_gan_loss,
)
from srflow.train.loop import train
from srflow.train.perceptual import (
    FeatureLoss,
    PretrainedWeightsError,
    VGG19Features,
    load_vgg19_features,
)

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random VGG19 weights in the ImageNet checkpoint layout (with a classifier key)."""
    g = torch.Generator().manual_seed(0)
    state = {f"features.{k}": torch.randn(v.shape, generator=g) * 0.05
             for k, v in VGG19Features().features.state_dict().items()}  # fmt: skip
    state["classifier.0.weight"] = torch.zeros(4, 4)
    path = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    torch.save(state, path)
    return path


def test_layout_is_vgg19_up_to_conv5_4(vgg_file: Path) -> None:
    net = load_vgg19_features(vgg_file)
    convs = [i for i, m in enumerate(net.features) if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 16 and convs[-1] == 34 == len(net.features) - 1
    x = torch.rand(1, 3, 32, 48)
    assert net(x).shape == (1, 512, 2, 3)
    # independent reference: functional VGG19 on the ImageNet-normalised input
    state = torch.load(vgg_file, weights_only=True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h = (x - mean) / std
    for block, count in enumerate((2, 2, 4, 4, 4)):
        for j in range(count):
            index = convs[sum((2, 2, 4, 4, 4)[:block]) + j]
            h = F.conv2d(h, state[f"features.{index}.weight"], state[f"features.{index}.bias"],
                         padding=1)  # fmt: skip
            if index != 34:
                h = F.relu(h)
        if block < 4:
            h = F.max_pool2d(h, 2)
    torch.testing.assert_close(net(x), h)


def test_safetensors_and_unprefixed_keys_load_the_same(vgg_file: Path, tmp_path: Path) -> None:
    state = torch.load(vgg_file, weights_only=True)
    bare = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("feat")}
    save_file(bare, tmp_path / "vgg19.safetensors")
    x = torch.rand(1, 3, 16, 16)
    a, b = load_vgg19_features(vgg_file)(x), load_vgg19_features(tmp_path / "vgg19.safetensors")(x)
    assert torch.equal(a, b)
    assert set(load_file(tmp_path / "vgg19.safetensors")) == set(bare)


def test_weight_file_errors_are_one_line(vgg_file: Path, tmp_path: Path) -> None:
    with pytest.raises(PretrainedWeightsError, match=r"missing\.pth: not found") as info:
        load_vgg19_features(tmp_path / "missing.pth")
    assert "\n" not in str(info.value)
    state = torch.load(vgg_file, weights_only=True)
    state["features.0.weight"] = torch.zeros(64, 3, 5, 5)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(PretrainedWeightsError, match=r"features\.0\.weight has shape"):
        load_vgg19_features(tmp_path / "shape.pth")
    with (tmp_path / "evil.pth").open("wb") as f:
        pickle.dump({"features.0.weight": Path("x")}, f)  # an arbitrary object: refused
    with pytest.raises(PretrainedWeightsError, match="not a readable weights file") as info:
        load_vgg19_features(tmp_path / "evil.pth")
    assert "\n" not in str(info.value)


def test_feature_loss_gradients_reach_the_sample_only(vgg_file: Path) -> None:
    loss = FeatureLoss(load_vgg19_features(vgg_file))
    hr = torch.rand(2, 3, 16, 16)
    assert torch.equal(loss(hr, hr), torch.zeros(2))
    sample = (hr + 0.1 * torch.randn_like(hr)).requires_grad_()
    value = loss(sample, hr)
    assert value.shape == (2,) and bool((value > 0).all())
    value.sum().backward()
    assert sample.grad is not None and sample.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())
    loss.train()
    assert not loss.features.training  # frozen: always eval


def test_discriminator_shape_parameters_and_seeded_init() -> None:
    d = VGGStyleDiscriminator(generator=torch.Generator().manual_seed(1))
    assert d(torch.rand(2, 3, 160, 160)).shape == (2, 1)
    convs = 3 * 64 * 9 + 64 + 64 * 64 * 16
    c_in = 64
    for width in (128, 256, 512, 512):
        convs += c_in * width * 9 + width * width * 16
        c_in = width
    norms = 2 * (64 + 2 * (128 + 256 + 512 + 512))
    linear = 512 * 25 * 100 + 100 + 100 + 1
    assert sum(p.numel() for p in d.parameters()) == convs + norms + linear
    again = VGGStyleDiscriminator(generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(d.parameters(), again.parameters(),
                                                 strict=True))  # fmt: skip
    with pytest.raises(ValueError, match="multiple of 32"):
        VGGStyleDiscriminator(input_size=100)


def test_gan_losses_are_vanilla_bce() -> None:
    zero = torch.zeros(3, 1)
    torch.testing.assert_close(generator_gan_loss(zero), torch.full((3,), math.log(2)))
    torch.testing.assert_close(discriminator_loss(zero, zero), torch.full((3,), 2 * math.log(2)))
    real, fake = torch.tensor([[4.0]]), torch.tensor([[-3.0]])
    expected = F.softplus(-real) + F.softplus(fake)
    torch.testing.assert_close(discriminator_loss(real, fake), expected.flatten())


def _photos(root: Path) -> Path:
    root.mkdir()
    for name in ("astronaut", "chelsea"):
        Image.fromarray(getattr(skimage_data, name)()[:128, :128]).save(root / f"{name}.png")
    return root


def test_hcflow_plus_plus_warms_up_the_discriminator_then_trains(
    vgg_file: Path, tmp_path: Path
) -> None:
    photos = _photos(tmp_path / "photos")
    losses = ("train.losses={nll: 2.0e-3, l1: 1.0, feature: 0.05, gan: 0.5, sample_temperature: "
              f"0.9, vgg19_weights: {vgg_file}, discriminator_warmup: 2}}")  # fmt: skip
    base = [f"data.train_hr={photos}", "train.checkpoint_every=0"]
    cfg = load_run_config("train_hcflow_tiny", [*base, losses, "train.steps=2"])
    train(cfg, tmp_path / "warm", progress=False)
    # only the discriminator trained: the model equals a run with a zero learning rate
    frozen = load_run_config("train_hcflow_tiny", [*base, "train.steps=2", "train.lr=1e-30"])
    train(frozen, tmp_path / "frozen", progress=False)
    warm = load_file(tmp_path / "warm" / "model.safetensors")
    still = load_file(tmp_path / "frozen" / "model.safetensors")
    assert all(torch.allclose(warm[k], still[k], rtol=0, atol=1e-12) for k in still)
    cfg = load_run_config(
        "train_hcflow_tiny", [f"data.train_hr={photos}", losses, "train.steps=4",
                              "train.checkpoint_every=2"],
    )  # fmt: skip
    train(cfg, tmp_path / "full", progress=False)
    full = load_file(tmp_path / "full" / "model.safetensors")
    assert any(not torch.equal(full[k], still[k]) for k in still)
    checkpoint = torch.load(tmp_path / "full" / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["adversary"] is not None and checkpoint["step"] == 4


def test_missing_vgg_weights_fail_on_one_line(tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    photos = _photos(tmp_path / "photos")
    code = main(["train", "train_hcflow_plusplus_sr_x4", "--out", str(tmp_path / "run"),
                 "--set", f"data.train_hr={photos}", "--set", "train.init_from=null",
                 "--set", "data.patch_size=32",
                 "--set", f"train.losses.vgg19_weights={tmp_path / 'vgg19.pth'}"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "vgg19.pth: not found" in err[0] and "train.losses.vgg19_weights" in err[0]


class Crash(RuntimeError):
    pass


def test_resume_with_the_discriminator_is_bit_identical(vgg_file: Path, tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos")
    losses = ("train.losses={nll: 2.0e-3, l1: 1.0, feature: 0.05, gan: 0.5, sample_temperature: "
              f"0.9, vgg19_weights: {vgg_file}, discriminator_warmup: 1}}")  # fmt: skip
    options = [f"data.train_hr={photos}", losses, "train.steps=4", "train.checkpoint_every=2"]
    cfg = load_run_config("train_hcflow_tiny", options)
    train(cfg, tmp_path / "full", progress=False)

    def crash_at_2(step: int, hr: torch.Tensor, lr: torch.Tensor) -> tuple:
        if step == 2:
            raise Crash("simulated kill")
        return hr, lr

    with pytest.raises(Crash):
        train(cfg, tmp_path / "resumed", batch_hook=crash_at_2, progress=False)
    train(cfg, tmp_path / "resumed", resume=True, progress=False)
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.equal(v, b["model"][k]) for k, v in a["model"].items())
    d_a, d_b = a["adversary"]["model"], b["adversary"]["model"]
    assert all(torch.equal(v, d_b[k]) for k, v in d_a.items())
    for pid, state in a["adversary"]["optimizer"]["state"].items():
        theirs = b["adversary"]["optimizer"]["state"][pid]
        assert all(torch.equal(v, theirs[k]) for k, v in state.items())
