"""What the docs state is what the code does: each check failed on the docs it was written for
(docs/latent-tools.md's Python block, docs/metrics.md's SSIM window, docs/rescaling.md's
temperature for the tiny recipe, the photos' Debian packages)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _doc(name: str) -> str:
    return (ROOT / "docs" / name).read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_latent_tools_python_block_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from srflow.divergence import DivergenceWarning

    (block,) = re.findall(r"```python\n(.*?)```", _doc("latent-tools.md"), flags=re.DOTALL)
    lr = Image.open(ROOT / "examples" / "astronaut_lr.png").convert("RGB").crop((0, 0, 32, 32))
    photo = lr.resize((128, 128), Image.BICUBIC)
    photo.save(tmp_path / "photo.png")  # the files the block names: any images of these sizes
    photo.transpose(Image.FLIP_LEFT_RIGHT).save(tmp_path / "texture.png")
    lr.save(tmp_path / "lr.png")
    mask = np.zeros((128, 128), np.uint8)
    mask[:40] = 255
    Image.fromarray(mask).save(tmp_path / "sky.png")
    noisy = np.asarray(photo, np.float64) + np.random.default_rng(0).normal(0, 10, (128, 128, 3))
    Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8)).save(tmp_path / "noisy.png")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        exec(compile(block, "docs/latent-tools.md", "exec"), scope)  # noqa: S102
    assert scope["same"].shape == (1, 3, 128, 128)  # type: ignore[attr-defined]
    assert scope["restored"].shape == (1, 3, 128, 128)  # type: ignore[attr-defined]


def test_the_ssim_window_is_the_one_the_docs_name() -> None:
    from skimage.metrics import structural_similarity

    from srflow.metrics.psnr_ssim import ssim

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    uniform = structural_similarity(a, b, channel_axis=2, data_range=255)
    gaussian = structural_similarity(a, b, channel_axis=2, data_range=255,
                                     gaussian_weights=True, sigma=1.5)  # fmt: skip
    assert ssim(a, b) == pytest.approx(uniform, abs=1e-12) and abs(uniform - gaussian) > 1e-4
    (row,) = [line for line in _doc("metrics.md").splitlines() if line.startswith("| SSIM |")]
    assert "7×7 uniform" in row and "Gaussian" not in row


def test_the_tiny_rescaling_recipe_is_upscaled_at_temperature_0() -> None:
    section = _doc("rescaling.md").split("## A round trip you can run")[1]
    ups = [line for line in section.splitlines() if line.startswith("srflow rescale up")]
    assert ups and all(" -t 0" in line for line in ups)
    from srflow.train.config import load_run_config

    recipe = load_run_config("train_hcflow_rescale_tiny")
    assert recipe.train.losses.sample_temperature == 0.0  # what it reconstructs at


@pytest.mark.parametrize("page", ["README.md", "docs/training.md"])
def test_the_photos_say_what_they_need(page: str) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    assert "prepare_photos.py" in text
    for package in ("lomiri-wallpapers-16.04", "lxqt-themes", "mate-backgrounds",
                    "plasma-workspace-wallpapers"):  # fmt: skip
        assert package in text, package
    assert "available offline" not in text


def test_the_app_docs_say_why_pillow_may_be_downgraded() -> None:
    from importlib.metadata import PackageNotFoundError, requires

    try:
        needs = [r for r in requires("gradio") or [] if r.lower().startswith("pillow")]
    except PackageNotFoundError:
        pytest.skip("the app extra is not installed")
    ceiling = re.search(r"<\s*(\d+)", needs[0])
    assert ceiling, needs  # gradio caps Pillow: the docs must say so, with its bound
    assert f"`pillow<{ceiling[1]}`" in _doc("app.md") and "downgrade Pillow" in _doc("app.md")


def test_every_test_the_robustness_page_names_exists() -> None:
    """docs/robustness.md names the test that holds each guarantee: each must exist (a
    ``::test_x`` after ``test_file.py::test_y`` is in the same file)."""
    import ast

    root = ROOT / "tests"
    text = _doc("robustness.md")
    missing, named, current = [], 0, None
    for match in re.finditer(r"`(?:tests/)?(test_\w+\.py)?(?:::(test_\w+))?`", text):
        module, name = match.groups()
        current = module or current
        if name is None or current is None:
            continue
        tree = ast.parse((root / current).read_text())
        names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        named += 1
        if name not in names:
            missing.append(f"{current}::{name}")
    assert named > 40 and not missing, missing


def test_every_test_the_metric_steps_name_exists() -> None:
    """docs/metrics.md's step-by-step tables name a test per step: each must exist (a bare
    name is in tests/test_metric_steps.py)."""
    import ast

    text = _doc("metrics.md")
    section = text[text.index("## NIQE, BRISQUE and MS-SSIM step by step") :]
    section = section[: section.index("\n## ", 5)]
    missing, named = [], 0
    for module, name in re.findall(r"`(?:(test_\w+\.py)::)?(test_\w+)(?:\[\w+\])?`", section):
        tree = ast.parse((ROOT / "tests" / (module or "test_metric_steps.py")).read_text())
        named += 1
        if name not in {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}:
            missing.append(f"{module or 'test_metric_steps.py'}::{name}")
    assert named > 20 and not missing, missing
