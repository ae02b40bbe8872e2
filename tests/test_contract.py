"""The model contract, for every family: one suite, parametrised over the registry.

A family gets all of it by adding itself to ``CASES`` (a tiny configuration of its own and
the training preset that trains it): encode -> decode inversion, seeded sampling, the sampling
twin against the reference decode, tiling, the latent tools or their one-line refusals,
evaluation, training 2 steps -> resume -> export -> load -> sample, and the app's actions.
Every published architecture is built with random weights and round-tripped through our
model format.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from srflow.app import actions
from srflow.app.session import Session
from srflow.checkpoints import load_model, save_model
from srflow.data.image_io import image_from_pil
from srflow.evaluation import EvalConfig, evaluate
from srflow.evaluation.images import EvalImage
from srflow.families import FAMILIES, build, describe, family_of, load_preset, published_models
from srflow.inference.pipeline import SuperResolver
from srflow.latent import (
    affected_region,
    decode_code,
    encode_image,
    latent_masks,
    normalize_code,
    resample_code,
    restore,
    sample_code,
    style_transfer,
)
from srflow.models.contract import CapabilityError, Encoding, FlowSR
from srflow.train.config import load_run_config
from srflow.train.loop import train

skimage_data = pytest.importorskip("skimage.data")


@dataclasses.dataclass(frozen=True)
class Case:
    """A family's tiny model for the suite and the training preset that trains one."""

    family: str
    preset: str
    overrides: tuple[str, ...] = ()
    perturb: float = 0.05

    @property
    def config(self) -> object:
        return load_run_config(self.preset, list(self.overrides)).model


#: One tiny configuration per family (HCFlow twice: its SR and its rescaling flavours).
CASES = {
    "srflow": Case("SRFlow", "train_tiny"),
    "srflow_da": Case("SRFlow-DA", "train_tiny", ("model.flow.subnet=plain",
                      "model.flow.subnet_kernel=3", "model.flow.subnet_depth=1",
                      "model.dequantization=gaussian")),
    "hcflow": Case("HCFlow", "train_hcflow_tiny", perturb=0.02),
    "hcflow_rescale": Case("HCFlow", "train_hcflow_rescale_tiny", perturb=0.02),
    "ncsr": Case("NCSR", "train_ncsr_tiny"),
}  # fmt: skip


def test_every_family_has_a_case() -> None:
    assert {case.family for case in CASES.values()} == {family.name for family in FAMILIES}


def tiny(name: str, dtype: torch.dtype = torch.float32) -> FlowSR:
    """The case's model built from a generator, every parameter nudged off its (often zero)
    initialisation so that every layer acts."""
    case = CASES[name]
    model = build(case.config, torch.Generator().manual_seed(1)).to(dtype)
    noise = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:  # not HCFlow's fixed Haar filters
                p.add_(case.perturb * torch.randn(p.shape, generator=noise, dtype=p.dtype))
    assert family_of(model.config).name == case.family
    return model.eval()


def _photo(size: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    crop = skimage_data.astronaut()[100 : 100 + size, 180 : 180 + size]
    return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).to(dtype) / 255


def _lr(size: int = 8, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    from srflow.latent import downscale

    return downscale(_photo(size * 4, dtype)[None], 4)


@pytest.mark.parametrize("name", sorted(CASES))
def test_encode_then_decode_is_the_identity(name: str) -> None:
    model = tiny(name, torch.float64)
    hr = _photo(32, torch.float64)[None]
    lr = _lr(8, torch.float64)
    enc = model.encode(hr, lr)
    assert isinstance(enc, Encoding)
    assert [tuple(z.shape) for z in enc.latents] == model.latent_shapes(enc.lr)
    assert len(enc.latents) == len(model.latent_levels())
    assert torch.isfinite(enc.log_prob).all() and torch.isfinite(enc.original_nll).all()
    torch.testing.assert_close(enc.bits_per_dim, -enc.log_prob / (np.log(2) * 3 * 32 * 32))
    back, logdet = model.decode(enc.lr, enc.latents)
    torch.testing.assert_close(back, hr, atol=1e-10, rtol=0)
    assert logdet is not None and logdet.shape == (1,)
    assert model.decode(model.prepare(enc.lr), enc.latents, logdet=False)[1] is None


@pytest.mark.parametrize("name", sorted(CASES))
def test_seeded_sampling_is_deterministic_and_independent_of_the_batch(name: str) -> None:
    model = tiny(name)
    lr = _lr()
    a = model.sample(lr, 0.4, 3, torch.Generator().manual_seed(5))
    b = model.sample(lr, 0.4, 3, torch.Generator().manual_seed(5), batch_size=1)
    c = model.sample(lr, 0.4, 3, torch.Generator().manual_seed(6))
    assert a.shape == (3, 1, 3, 32, 32) and a.min() >= 0 and a.max() <= 1
    torch.testing.assert_close(a, b, atol=5e-5, rtol=0)  # batching: float32 rounding only
    assert not torch.equal(a, c) and not torch.equal(a[0], a[1])


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_sampling_twin_decodes_what_the_model_decodes(name: str) -> None:
    model = tiny(name, torch.float64)
    lr = _lr(8, torch.float64)
    latents = model.sample_latents(model.latent_shapes(lr, 3), 0.5, torch.Generator(),
                                   dtype=torch.float64)  # fmt: skip
    plain, _ = model.decode(lr, latents)
    twin = model.sampling_twin()
    prepared = twin.prepare(lr)
    for _ in range(2):  # the second decode reuses what the first kept
        fast, none = twin.decode(prepared, latents, logdet=False)
        assert none is None
        torch.testing.assert_close(fast, plain, atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_tiling_covers_the_image_and_one_tile_is_no_tiling(name: str) -> None:
    resolver = SuperResolver(tiny(name))
    lr = _lr(32)[0]
    whole = resolver.super_resolve(lr, 0.3, samples=2, seed=1)
    one_tile = resolver.super_resolve(lr, 0.3, samples=2, seed=1, tile=32)
    tiled = resolver.super_resolve(lr, 0.3, samples=2, seed=1, tile=16, tile_overlap=8)
    assert torch.equal(one_tile, whole)
    assert tiled.shape == whole.shape == (2, 3, 128, 128) and torch.isfinite(tiled).all()
    assert torch.equal(tiled, resolver.super_resolve(lr, 0.3, samples=2, seed=1, tile=16,
                                                     tile_overlap=8))  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_latent_tools_or_their_refusal(name: str) -> None:
    model = tiny(name)
    hr = _photo(128)
    code = encode_image(model, hr)
    torch.testing.assert_close(decode_code(model, code)[0], hr, atol=1e-4, rtol=0)
    mask = torch.zeros(128, 128, dtype=torch.bool)
    mask[4:12, 4:12] = True
    redrawn = resample_code(model, code, 0.5, torch.Generator().manual_seed(0), mask)
    masks = latent_masks(mask, [tuple(z.shape) for z in code.latents], code.padded_size)
    for old, new, inside in zip(code.latents, redrawn.latents, masks, strict=True):
        assert torch.equal(torch.where(inside, 0, old), torch.where(inside, 0, new))
    if model.capabilities.local_receptive_field:
        region = affected_region(model, masks)
        changed = (decode_code(model, redrawn) != decode_code(model, code)).any(1, keepdim=True)
        assert not (changed & ~region).any() and not region.all()
    else:
        with pytest.raises(CapabilityError) as refused:
            affected_region(model, masks)
        assert "\n" not in str(refused.value) and "latent change" in str(refused.value)
    target = sample_code(model, _lr(32)[0], 0.5, torch.Generator().manual_seed(1))
    styled = style_transfer(model, hr, target.lr[0], temperature=0.5)
    assert decode_code(model, styled).shape == (1, 3, 128, 128)
    normalized = normalize_code(model, code, "local", 0.5, torch.Generator().manual_seed(2))
    assert torch.isfinite(decode_code(model, normalized)).all()
    assert restore(model, hr, temperature=0.5).shape == (1, 3, 128, 128)


@pytest.mark.parametrize("name", sorted(CASES))
def test_evaluation(name: str) -> None:
    gt = (_photo(32).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    lr = (_lr(8)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    config = EvalConfig(temperatures=(0.4,), samples=2, skip_metrics=("lpips", "niqe", "brisque"))
    result = evaluate(tiny(name), [EvalImage("astronaut", gt, lr, "given")], config)
    labels = [row.label for row in result.rows]
    assert labels[0] == "bicubic" and len(labels) == 3  # bicubic, temperature 0, 0.4
    family = family_of(CASES[name].config).name
    assert all(label.startswith(family) for label in labels[1:])
    assert all(np.isfinite(row.metrics["psnr"]) for row in result.rows)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "chelsea", "coffee"):
        Image.fromarray(getattr(skimage_data, name)()).save(root / f"{name}.png")
    return root


@pytest.mark.parametrize("name", sorted(CASES))
def test_train_resume_export_load_sample(name: str, photos: Path, tmp_path: Path) -> None:
    from srflow.cli.main import main

    case = CASES[name]
    sets = [f"data.train_hr={photos}", "train.checkpoint_every=1", "train.val_every=0",
            "train.l1_pretrain_steps=0", "data.workers=0", *case.overrides]  # fmt: skip
    run = tmp_path / "run"
    train(load_run_config(case.preset, [*sets, "train.steps=1"]), run, progress=False)
    result = train(load_run_config(case.preset, [*sets, "train.steps=2"]), run, resume=True,
                   progress=False)  # fmt: skip
    assert result.step == 2
    written = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert written["model"]["family"] == case.family  # the run names its family
    assert load_run_config(run / "config.yaml").model == case.config
    assert main(["export", str(run), str(tmp_path / "m.safetensors")]) == 0
    model = load_model(tmp_path / "m.safetensors")
    assert model.config == case.config and describe(model.config).startswith(case.family)
    out = model.sample(_lr(), 0.3, 2, torch.Generator().manual_seed(0))
    assert out.shape == (2, 1, 3, 32, 32) and torch.isfinite(out).all()
    image = tmp_path / "lr.png"
    pixels = (_lr(8)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(image)
    status = main(["sr", str(image), "--model", str(tmp_path / "m.safetensors"), "-t", "0.3",
                   "-o", str(tmp_path / "sr")])  # fmt: skip
    assert status in (0, 3)  # 3: values of a 2-step model that diverged, clamped and named
    assert Image.open(tmp_path / "sr" / "lr_sr_t0.30_s00.png").size == (32, 32)


@pytest.mark.parametrize("name", sorted(CASES))
def test_overrides_work_on_a_yaml_file_of_the_family(name: str, tmp_path: Path) -> None:
    from srflow.config.loading import dump_yaml, to_dict

    case = CASES[name]
    path = tmp_path / "run.yaml"
    dump_yaml(load_run_config(case.preset, list(case.overrides)), path)
    model = to_dict(case.config)
    key = next(k for k, v in model.items() if isinstance(v, int) and k != "scale")
    loaded = load_run_config(path, [f"model.{key}={model[key] + 1}"])
    assert getattr(loaded.model, key) == model[key] + 1
    assert family_of(loaded.model).name == case.family
    with pytest.raises(ValueError, match="model.no_such_key"):
        load_run_config(path, ["model.no_such_key=1"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_app_actions(name: str) -> None:
    resolver = SuperResolver(tiny(name))
    photo = Image.fromarray((_lr(8)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    session = Session(image=image_from_pil(photo), name="photo")
    samples = actions.draw_samples(session, resolver, 0.3, 2, 0, lambda *_: None)
    assert samples.images.shape == (2, 3, 32, 32) and len(session.codes) == 2
    actions.start_exploring(session, resolver, 1)
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[4:12, 4:12] = True
    image, region, _ = actions.redraw_region(session, resolver, mask, 0.3, 3)
    assert image.shape == (3, 32, 32)
    assert (region is not None) == resolver.model.capabilities.local_receptive_field
    assert torch.equal(actions.undo(session), session.explored.images[0])
    restored = actions.restore_image(resolver, image_from_pil(photo), 0.3, 0)
    assert restored.shape == (3, 8, 8)


@pytest.mark.parametrize(("family", "published"), published_models(),
                         ids=[p.name for _, p in published_models()])  # fmt: skip
def test_every_published_architecture_round_trips(family, published, tmp_path: Path) -> None:  # noqa: ANN001
    """Built with random weights, saved in our format and loaded back: the same configuration,
    the same weights, the same description; a model of the configuration's own family."""
    model = family.build(published.config, torch.Generator().manual_seed(0))
    path = save_model(model, tmp_path / "m.safetensors", dtype=torch.float16)
    loaded = load_model(path)
    assert loaded.config == published.config and type(loaded) is type(model)
    assert describe(loaded.config).endswith(f"(published {published.shown_as})")
    state, again = model.state_dict(), loaded.state_dict()
    assert state.keys() == again.keys()
    assert all(torch.equal(state[k].half().float(), again[k]) for k in state)
    side = 4 * loaded.config.size_multiple_lr  # the smallest sizes: the structure, not the values
    lr = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(1))
    hr = torch.rand(1, 3, side * loaded.config.scale, side * loaded.config.scale)
    with torch.no_grad():
        enc = loaded.encode(hr, lr)
        assert [tuple(z.shape) for z in enc.latents] == loaded.latent_shapes(enc.lr)
        torch.testing.assert_close(loaded.decode(enc.lr, enc.latents)[0], hr, atol=1e-3, rtol=0)


def test_a_preset_names_its_family() -> None:
    assert family_of(load_preset("tiny")).name == "SRFlow"


def test_a_derived_family_is_detected_before_its_parent() -> None:
    """Detection tries the registry in order; a family that derives from another (its keys
    are the parent's plus more) comes before it wherever it is listed."""
    from srflow.families import _derived_first

    def entry(name: str, parent: str | None = None) -> object:
        return type(name, (), {"name": name, "parent": parent})()

    parent, other, child = entry("Base"), entry("Other"), entry("Derived", "Base")
    grandchild = entry("Derived2", "Derived")
    order = _derived_first((parent, other, child, grandchild))  # type: ignore[arg-type]
    assert [f.name for f in order] == ["Derived2", "Derived", "Base", "Other"]
    names = [f.name for f in FAMILIES]
    assert all(f.parent is None or names.index(f.name) < names.index(f.parent) for f in FAMILIES)
