"""NCSR beyond the 4x vectors: the 8x configuration built from the specification (checked here
against its key list and the spec's tables, not against the 4x tests), detection before
SRFlow, the noise level as a user control, the sampling twin with noise maps, the residual
(FS-NCSR) option and the softflow training noise."""

from __future__ import annotations

import pytest
import torch

from reference_weights import read_keys
from srflow.families import FAMILIES, describe, detect, family_of, load_preset, published_named
from srflow.families.ncsr_objective import noisy_pair, softflow_noise
from srflow.models.contract import CapabilityError
from srflow.models.ncsr import NCSR
from srflow.models.ncsr_config import NCSRConfig

SPEC_TABLE = {  # ../spec/ncsr.md section 4: params (with the unused conv), keys, active layers
    "NCSR_4X": (41_662_643, 2165, [*range(23, 39), *range(42, 58)]),
    "NCSR_8X": (64_520_163, 3136, [*range(55, 71), *range(78, 94)]),
}


@pytest.mark.parametrize("name", sorted(SPEC_TABLE))
def test_published_configurations_follow_the_spec(name: str) -> None:
    params, keys, active = SPEC_TABLE[name]
    published = published_named(name)
    family = family_of(published.config)
    with torch.device("meta"):
        model = family.build(published.config)
    assert sum(p.numel() for p in model.parameters()) + 276_576 == params
    assert [i for i, m in enumerate(model.flow.layers) if getattr(m, "noise_active", False)] == (
        active
    )
    layout = read_keys(name)
    original = family.to_original(model.state_dict(), published.config)
    assert len(layout) == keys and set(original) | set(family.unused_original_keys(None)) == set(
        layout
    )
    assert all(tuple(original[k].shape) == tuple(layout[k]) for k in original)
    fake = {k: torch.zeros(s) for k, s in layout.items()}
    detection = detect(fake)
    assert detection.family.name == "NCSR" and detection.config == published.config
    scale = published.scale
    assert describe(detection.config) == f"NCSR {scale}x (published {scale}X)"


def test_8x_latent_shapes_follow_the_spec() -> None:
    config = published_named("NCSR_8X").config
    assert config.flow.steps_per_level == 20 and config.encoder.stacked_blocks == (1, 8, 15, 22)
    with torch.device("meta"):
        model = NCSR(config)
    h, w = 4, 6
    assert model.latent_shapes(torch.zeros(1, 3, h, w, device="meta")) == [
        (1, 6, 4 * h, 4 * w), (1, 12, 2 * h, 2 * w), (1, 192, h // 2, w // 2)
    ]  # fmt: skip


def test_ncsr_is_tried_before_srflow_and_srflow_stays_srflow() -> None:
    names = [f.name for f in FAMILIES]
    assert names.index("NCSR") < names.index("SRFlow")
    fake = {k: torch.zeros(s) for k, s in read_keys("DF2K_4X").items()}
    assert detect(fake).family.name == "SRFlow"


def _tiny(seed: int = 1, **options: object) -> NCSR:
    config = load_preset("ncsr_tiny")
    if options:
        config = NCSRConfig(**{**config.__dict__, **options})
    model = NCSR(config, torch.Generator().manual_seed(seed)).double()
    noise = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=noise, dtype=p.dtype))
    return model.eval()


def test_the_noise_level_conditions_the_samples_and_other_families_refuse_it() -> None:
    model = _tiny()
    lr = torch.rand(2, 3, 8, 8, dtype=torch.float64)  # batches above one (the original fails)
    zero = model.sample(lr, 0.5, 2, torch.Generator().manual_seed(0))
    assert torch.equal(zero, model.sample(lr, 0.5, 2, torch.Generator().manual_seed(0),
                                          noise_level=0.0))  # fmt: skip
    noisy = model.sample(lr, 0.5, 2, torch.Generator().manual_seed(0), noise_level=0.05)
    assert noisy.shape == (2, 2, 3, 32, 32) and not torch.equal(noisy, zero)
    with pytest.raises(ValueError, match=r"noise level must lie in \[0, 1\]"):
        model.prepare(lr, noise_level=2.0)
    srflow_model = family_of(load_preset("tiny")).build(load_preset("tiny"))
    with pytest.raises(CapabilityError, match="not conditioned on a noise level"):
        srflow_model.prepare(lr.float(), noise_level=0.01)


@pytest.mark.parametrize("noise_level", [None, 0.0, 0.03])
def test_the_twin_shares_the_noise_maps_part_and_equals_the_reference(noise_level) -> None:  # noqa: ANN001
    model = _tiny()
    lr = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    latents = model.sample_latents(model.latent_shapes(lr, 3), 0.6, torch.Generator(),
                                   dtype=torch.float64)  # fmt: skip
    prepared = model.prepare(lr, noise_level=noise_level)
    plain, _ = model.decode(prepared, latents)
    twin = model.sampling_twin()
    kept = twin.prepare(lr, noise_level=noise_level)
    fast, _ = twin.decode(kept, latents, logdet=False)
    torch.testing.assert_close(fast, plain, atol=1e-10, rtol=0)
    noise_layers = [m.noise for m in model.flow.layers if getattr(m, "noise_active", False)]
    kept_ids = {key[0] for key in kept.cache}
    assert noise_layers and all(id(layer) in kept_ids for layer in noise_layers)


def test_residual_models_the_difference_to_the_bicubic_upscale() -> None:
    model = _tiny(residual=True)
    plain = _tiny()
    hr = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    lr = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    enc = model.encode(hr, lr)
    back, _ = model.decode(lr, enc.latents)
    torch.testing.assert_close(back, hr, atol=1e-10, rtol=0)
    direct = plain.encode(hr - model.upsampled(lr), lr)
    assert all(torch.equal(a, b) for a, b in zip(enc.latents, direct.latents, strict=True))
    twin = model.sampling_twin()
    torch.testing.assert_close(twin.decode(twin.prepare(lr), enc.latents, logdet=False)[0], hr,
                               atol=1e-10, rtol=0)  # fmt: skip


def test_softflow_noise_is_per_sample_and_the_lr_noise_is_its_downscale() -> None:
    generator = torch.Generator()
    both = softflow_noise((3, 16, 16), [7, 8], generator, torch.device("cpu"), 0.05)
    alone = softflow_noise((3, 16, 16), [8], generator, torch.device("cpu"), 0.05)
    assert torch.equal(both[1:], alone)
    assert 0 < both[0].std() < 0.05 and both[0].std() != both[1].std()  # sigma per image
    hr, lr = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 4, 4)
    noisy_hr, noisy_lr = noisy_pair(hr, lr, both, 4)
    torch.testing.assert_close(noisy_hr - hr, both, atol=1e-6, rtol=0)
    assert (noisy_lr - lr).abs().max() < both.abs().max()  # a downscale: smoothed noise


def test_the_app_and_the_latent_tools_keep_the_noise_level(tmp_path) -> None:  # noqa: ANN001
    from PIL import Image

    from srflow.app import actions
    from srflow.app.models import model_info
    from srflow.app.session import Session
    from srflow.data.image_io import image_from_pil
    from srflow.inference.pipeline import SuperResolver
    from srflow.latent import decode_code, load_latents, save_latents

    resolver = SuperResolver(_tiny().float())
    assert model_info(resolver, "ncsr.safetensors").family == "NCSR"  # the Model panel
    photo = Image.fromarray((torch.rand(8, 12, 3) * 255).byte().numpy())
    session = Session(image=image_from_pil(photo), name="photo")
    result = actions.draw_samples(session, resolver, 0.4, 2, 3, lambda d, w: None,
                                  noise_level=0.04)  # fmt: skip
    expected = next(resolver.sample_temperatures(session.image.rgb, [0.4], 2, 3,
                                                 noise_level=0.04))  # fmt: skip
    assert torch.allclose(result.images, expected, atol=1e-5)
    assert not torch.allclose(result.images, next(resolver.sample_temperatures(
        session.image.rgb, [0.4], 2, 3)), atol=1e-3)  # fmt: skip
    code = session.codes[1]
    assert code.noise_level == 0.04
    explored = actions.start_exploring(session, resolver, 1)
    assert torch.allclose(explored.clamp(0, 1), result.images[1], atol=1e-5)
    back = load_latents(save_latents(tmp_path / "code.safetensors", code))
    assert back.noise_level == 0.04
    model = resolver.model
    torch.testing.assert_close(decode_code(model, back), decode_code(model, code))


@pytest.mark.parametrize("residual", [False, True], ids=["ncsr", "fs_ncsr"])
def test_the_tiny_preset_trains_end_to_end(tmp_path, residual: bool) -> None:  # noqa: ANN001
    import json

    import numpy as np
    from PIL import Image

    from srflow.checkpoints import load_model
    from srflow.train.checkpoint import export_model
    from srflow.train.config import load_run_config
    from srflow.train.loop import train

    skimage_data = pytest.importorskip("skimage.data")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("astronaut", "chelsea", "coffee"):
        Image.fromarray(getattr(skimage_data, name)()).save(photos / f"{name}.png")
    cfg = load_run_config("train_ncsr_tiny", [
        f"data.train_hr={photos}", "train.steps=60", "train.log_every=10",
        "train.checkpoint_every=0", f"model.residual={str(residual).lower()}"])  # fmt: skip
    train(cfg, tmp_path / "run", progress=False)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    losses = [r["bits_per_dim"] for r in map(json.loads, lines) if r["kind"] == "train"]
    assert len(losses) == 6 and all(np.isfinite(losses)), losses
    # the residual starts lower (the bicubic upscale explains most of the image)
    assert losses[-1] < losses[0] - (0.1 if residual else 0.3), losses
    model = load_model(export_model(tmp_path / "run", tmp_path / "ncsr.safetensors"))
    assert isinstance(model, NCSR) and model.config == cfg.model


def test_srflow_sr_takes_a_noise_level_for_ncsr_and_refuses_it_for_others(
    tmp_path, capsys  # noqa: ANN001
) -> None:
    import numpy as np
    from PIL import Image

    from srflow.checkpoints import save_model
    from srflow.cli.main import main
    from test_inference_api import tiny_model

    ncsr = save_model(_tiny().float(), tmp_path / "ncsr.safetensors")
    srflow_model = save_model(tiny_model(), tmp_path / "srflow.safetensors")
    Image.fromarray((np.random.default_rng(0).random((20, 28, 3)) * 255).astype(np.uint8)).save(
        tmp_path / "in.png"
    )
    capsys.readouterr()
    assert main(["sr", str(tmp_path / "in.png"), "-o", str(tmp_path / "no"), "--model",
                 str(srflow_model), "--noise-level", "0.02"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--noise-level" in err[0] and "noise level" in err[0]
    assert not (tmp_path / "no").exists()

    def run(out: str, *options: str) -> np.ndarray:
        args = ["sr", str(tmp_path / "in.png"), "-o", str(tmp_path / out), "--model", str(ncsr),
                "-t", "0.5", "-n", "2", *options]  # fmt: skip
        assert main(args) in (0, 3)  # 3: a few diverged values of random weights, clamped
        return np.stack([np.asarray(Image.open(p)) for p in sorted((tmp_path / out).iterdir())])

    zero, default = run("zero", "--noise-level", "0"), run("default")
    assert zero.shape == (2, 80, 112, 3) and np.array_equal(zero, default)
    noisy = run("noisy", "--noise-level", "0.05")
    assert not np.array_equal(noisy, zero)
    tiled = run("tiled", "--noise-level", "0.05", "--tile", "16", "--tile-overlap", "4")
    assert np.abs(tiled.astype(float) - noisy).mean() < 2
