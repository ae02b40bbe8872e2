"""The explorer app without a browser: its pure functions and actions with the tiny model."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srflow.app import actions
from srflow.app.images import (
    paint_over,
    painted_mask,
    parse_noise_level,
    parse_temperature,
    read_upload,
    sample_file_name,
)
from srflow.app.models import ModelStore, model_info
from srflow.app.session import AppError, Cancelled, Session
from srflow.checkpoints import save_model
from srflow.data.image_io import image_from_pil
from srflow.inference.naming import output_name
from srflow.inference.pipeline import SuperResolver
from srflow.latent import affected_region, decode_code, latent_masks
from test_inference_api import tiny_model

T = 0.4  # the tiny model diverges in places above about 0.6


@pytest.fixture(scope="module")
def resolver() -> SuperResolver:
    return SuperResolver(tiny_model())


@pytest.fixture
def session() -> Session:
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 32, 3), np.uint8))
    return Session(image=image_from_pil(photo), name="photo")


def _no_report(done: float, what: str) -> None:
    pass


def test_temperatures_are_parsed_with_clear_errors() -> None:
    assert parse_temperature(" 0.8 ") == 0.8
    assert parse_temperature("0.9, 0.7 0.5") == [0.9, 0.7, 0.5]
    with pytest.raises(AppError, match="not a number"):
        parse_temperature("warm")
    with pytest.raises(AppError, match="far outside"):
        parse_temperature("80")
    with pytest.raises(AppError, match="one number"):
        parse_temperature("")


def test_download_names_are_those_of_srflow_sr() -> None:
    assert sample_file_name("photo", 0.8, 2) == output_name("photo", "_sr", 0.8, 2, "png")
    assert sample_file_name("photo", 0.8, 2) == "photo_sr_t0.80_s02.png"
    assert sample_file_name("photo", [0.9, 0.5], 0) == "photo_sr_t0.90-0.50_s00.png"


def test_bad_uploads_get_one_line(tmp_path: Path) -> None:
    good = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (10, 20, 30)).save(good)
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:60])
    (tmp_path / "notes.png").write_text("not an image")
    assert read_upload(good).rgb.shape == (3, 30, 40)
    with pytest.raises(AppError, match=r"^cut\.png: cannot read image"):
        read_upload(tmp_path / "cut.png")
    with pytest.raises(AppError, match=r"^notes\.png: cannot read image"):
        read_upload(tmp_path / "notes.png")
    with pytest.raises(AppError, match="40x30 pixels; this app takes at most 1000 pixels"):
        read_upload(good, max_pixels=1000)


def test_painted_mask_is_the_union_of_painted_layers() -> None:
    layer = np.zeros((8, 10, 4), np.uint8)
    with pytest.raises(AppError, match="paint the region"):
        painted_mask({"layers": [layer]}, (8, 10))
    layer[2:4, 3:5, 3] = 255
    mask = painted_mask({"layers": [layer], "background": None}, (8, 10))
    assert mask.dtype == torch.bool and mask.sum() == 4 and mask[2, 3]
    with pytest.raises(AppError, match="select the sample again"):
        painted_mask({"layers": [layer]}, (16, 20))
    layer[2:4, 3:5, :3] = (255, 0, 0)
    layer[2, 3, 3] = 128  # a soft brush edge: half covered
    image = torch.full((3, 8, 10), 0.5)
    painted, mask = paint_over(image, {"layers": [layer]})
    assert torch.equal(mask, painted_mask({"layers": [layer]}, (8, 10)))
    assert torch.equal(painted[:, ~mask], image[:, ~mask])  # the exact image outside
    assert torch.allclose(painted[:, 3, 4], torch.tensor([1.0, 0.0, 0.0]))
    a = 128 / 255
    expected = torch.tensor([a + 0.5 * (1 - a), 0.5 * (1 - a), 0.5 * (1 - a)])
    assert torch.allclose(painted[:, 2, 3], expected, atol=1e-6)


def test_samples_match_the_library_and_come_with_scores(
    resolver: SuperResolver, session: Session, tmp_path: Path
) -> None:
    reports: list[float] = []
    result = actions.draw_samples(session, resolver, T, 3, 7, lambda d, _: reports.append(d))
    expected = next(resolver.sample_temperatures(session.image.rgb, [T], 3, 7))
    assert result.images.shape == (3, 3, 96, 128)
    assert torch.allclose(result.images, expected, atol=1e-5)
    assert reports[-1] == 1.0 and len(reports) == 3
    assert len(result.lr_psnr) == 3 and result.std_map.shape == (96, 128)
    assert np.isclose(result.std_map.mean(), result.diversity)
    files = actions.write_samples(session, tmp_path)
    assert [p.name for p in files[:3]] == [f"photo_sr_t0.40_s0{i}.png" for i in range(3)]
    assert sorted(zipfile.ZipFile(files[3]).namelist()) == [p.name for p in files[:3]]
    per_level = actions.draw_samples(session, resolver, [T, T, T], 1, 7, _no_report)
    assert torch.equal(per_level.images[0], result.images[0])  # the same temperatures


def test_cancel_stops_sampling(resolver: SuperResolver, session: Session) -> None:
    def press_cancel(done: float, what: str) -> None:
        assert session.request_cancel()

    assert not session.request_cancel()  # nothing runs: nothing to cancel later either
    with pytest.raises(Cancelled):
        actions.draw_samples(session, resolver, T, 3, 0, press_cancel)
    assert session.samples is None and not session.busy and not session.cancel


def test_redraw_keeps_the_rest_bit_identical_and_undoes(
    resolver: SuperResolver, session: Session
) -> None:
    actions.draw_samples(session, resolver, T, 2, 0, _no_report)
    prepared = []
    prepare = resolver.sampler.prepare
    resolver.sampler.prepare = lambda lr, **kw: prepared.append(1) or prepare(lr, **kw)  # type: ignore[method-assign]
    try:
        before = actions.start_exploring(session, resolver, 1)
        plain = decode_code(resolver.model, session.codes[1])[0].clamp(0, 1)
        torch.testing.assert_close(before, plain, atol=2e-5, rtol=0)  # prepared: rounding
        mask = torch.zeros(96, 128, dtype=torch.bool)
        mask[4:10, 6:14] = True
        after, region, _ = actions.redraw_region(session, resolver, mask, T, 3)
        again, _, _ = actions.redraw_region(session, resolver, mask, T, 3)
    finally:
        del resolver.sampler.prepare
    assert len(prepared) == 1  # one prepared conditioning serves every redraw
    assert region is not None and region.shape == (96, 128) and not region.all()
    shapes = [tuple(z.shape) for z in session.codes[1].latents]
    bound = affected_region(resolver.model, latent_masks(mask, shapes, (96, 128)))[0, 0]
    assert torch.equal(region, bound)
    changed = (after != before).any(0)
    assert changed.any() and not (changed & ~region).any()
    assert not torch.equal(again, after)  # each redraw takes the next seed
    assert torch.equal(actions.undo(session), after)
    assert torch.equal(actions.undo(session), before)
    with pytest.raises(AppError, match="nothing to undo"):
        actions.undo(session)


def test_transfer_normalize_restore(resolver: SuperResolver, session: Session) -> None:
    actions.draw_samples(session, resolver, T, 1, 0, _no_report)
    source = image_from_pil(Image.new("RGB", (128, 96), (120, 90, 60)))
    assert actions.transfer_style(session, resolver, source, T, 0).shape == (3, 96, 128)
    with pytest.raises(AppError, match="style source: the source HR image is 32x24"):
        actions.transfer_style(session, resolver, session.image, T, 0)
    with pytest.raises(AppError, match="choose a sample"):
        actions.transfer_content(session, resolver, torch.rand(3, 96, 128),
                                 torch.ones(96, 128, dtype=torch.bool), T, 0)  # fmt: skip
    base = actions.start_exploring(session, resolver, 0)
    mask = torch.zeros(96, 128, dtype=torch.bool)
    mask[8:16, 8:16] = True
    edited = torch.where(mask, torch.ones(3, 96, 128), base)
    assert actions.transfer_content(session, resolver, edited, mask, T, 0).shape == base.shape
    restored = actions.restore_image(resolver, image_from_pil(Image.new("RGB", (16, 16))), T, 0)
    assert restored.shape == (3, 16, 16) and 0 <= restored.min() <= restored.max() <= 1


def test_a_noise_level_is_refused_in_one_line_by_a_model_without_one(
    resolver: SuperResolver, session: Session
) -> None:
    with pytest.raises(AppError, match=r"^a noise level: .*not conditioned on a noise level"):
        actions.draw_samples(session, resolver, T, 1, 0, _no_report, noise_level=0.02)
    assert session.samples is None
    assert parse_noise_level(" ") is None and parse_noise_level("0.03") == 0.03
    with pytest.raises(AppError, match="noise level: not a number: 'low'"):
        parse_noise_level("low")


def test_sessions_do_not_share_results(resolver: SuperResolver, session: Session) -> None:
    other = Session()
    actions.draw_samples(session, resolver, T, 1, 0, _no_report)
    assert other.samples is None and other.codes == []
    with pytest.raises(AppError, match="upload an image"):
        actions.draw_samples(other, resolver, T, 1, 0, _no_report)
    with pytest.raises(AppError, match="draw samples"):
        actions.start_exploring(other, resolver, 0)


def test_model_store_loads_once_and_explains_bad_files(tmp_path: Path) -> None:
    path = save_model(tiny_model(), tmp_path / "tiny.safetensors")
    store = ModelStore(str(path), device="cpu")
    assert store.get() is store.get(None)
    info = model_info(store.get(), store.label(None))
    assert (info.family, info.scale, info.device) == ("SRFlow", 4, "cpu")
    assert info.parameters > 0 and "parameters" in info.markdown()
    assert str(tmp_path) not in info.markdown()  # the page never shows a server path


def test_srflow_app_without_gradio_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from srflow.cli import app
    from srflow.cli.main import main

    real = importlib.util.find_spec
    monkeypatch.setattr(app.importlib.util, "find_spec",
                        lambda name, *a: None if name == "gradio" else real(name, *a))  # fmt: skip
    assert main(["app", "--port", "7999"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'srflow[app]'" in err


def test_srflow_app_help_needs_no_gradio(capsys: pytest.CaptureFixture[str]) -> None:
    from srflow.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["app", "--help"])
    assert exit_.value.code == 0 and "--max-pixels" in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("gradio") is None, reason="gradio not installed")
def test_a_failing_callback_shows_one_line() -> None:
    from srflow.app.handlers import guarded

    status = object()

    def broken() -> dict:
        raise KeyError("x" * 3)

    def refused() -> dict:
        raise AppError("upload an image first")

    assert guarded(status)(broken)() == {status: "**error:** unexpected KeyError: 'xxx'"}
    assert guarded(status)(refused)() == {status: "**error:** upload an image first"}
