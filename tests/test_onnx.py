"""ONNX export: every family and published architecture to an ONNX folder that onnxruntime
samples from like the PyTorch model; the CLI round trip of the embedded model; the torch-free
example (docs/onnx.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srflow.checkpoints import CheckpointError, load_model
from srflow.families import published_models
from srflow.models.contract import CapabilityError

try:
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401
except ImportError:
    pytest.skip("onnx/onnxruntime are not installed (pip install 'srflow[onnx]')",
                allow_module_level=True)  # fmt: skip

from srflow.checkpoints.onnx_export import export_onnx  # noqa: E402
from test_contract import CASES, _lr, tiny  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "astronaut_lr.png"


def within_one_level(a: torch.Tensor, b: torch.Tensor) -> float:
    """The fraction of 8-bit pixels of two image batches within 1/255 of each other."""
    a8, b8 = (torch.round(x.clamp(0, 1) * 255) for x in (a, b))
    return float(((a8 - b8).abs() <= 1).float().mean())


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_family_samples_through_onnx_like_pytorch(name: str, tmp_path: Path) -> None:
    model = tiny(name)
    folder = export_onnx(model, tmp_path / name)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["verified"]["max_relative_difference"] < 1e-3
    exported = load_model(folder)
    lr = _lr(8)
    extra = {"noise_level": 0.2} if model.capabilities.noise_level else {}
    for temperature in (0.0, 0.7):
        expected = model.sample(lr, temperature, 3, torch.Generator().manual_seed(5), **extra)
        got = exported.sample(lr, temperature, 3, torch.Generator().manual_seed(5), **extra)
        assert within_one_level(got, expected) >= 0.999
    assert exported.latent_shapes(lr, 2) == model.latent_shapes(lr, 2)
    if model.capabilities.downscale:
        hr = torch.rand(1, 3, 32, 32)
        assert torch.allclose(exported.downscale(hr), model.downscale(hr), atol=1e-4)
    with pytest.raises(CapabilityError, match="ONNX export samples only"):
        exported.encode(torch.rand(1, 3, 32, 32), lr)


@pytest.mark.slow
@pytest.mark.parametrize(("family", "published"), published_models(),
                         ids=[p.name for _, p in published_models()])  # fmt: skip
def test_every_published_architecture_exports(family, published, tmp_path: Path) -> None:  # noqa: ANN001
    """Random weights: the export's own check (a probe decoded both ways, relative to the
    output's range: an untrained deep flow's inverse is chaotic)."""
    model = family.build(published.config, torch.Generator().manual_seed(0))
    folder = export_onnx(model, tmp_path / "export")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["family"] == family.name and manifest["scale"] == published.config.scale
    assert manifest["verified"]["max_relative_difference"] < 1e-3


@pytest.fixture(scope="module")
def default_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("onnx") / "onnx_default"
    done = subprocess.run([sys.executable, "-m", "srflow", "export-onnx", "-o", str(folder)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout
    assert "(conditioning.onnx, manifest.json, sampling.onnx)" in done.stdout
    return folder


def _sr(model: list[str], out: Path, *options: str) -> list[np.ndarray]:
    command = [sys.executable, "-m", "srflow", "sr", str(EXAMPLE), *model, "-o", str(out)]
    done = subprocess.run([*command, "--seed", "0", *options], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [np.asarray(Image.open(p), dtype=np.int16) for p in sorted(out.glob("*.png"))]


@pytest.mark.parametrize("options", [("-n", "3"), ("-t", "0.5", "0.9", "--tile", "32"),
                                     ("-n", "3", "--batch-size", "2")])  # fmt: skip
def test_the_embedded_model_through_onnx_gives_the_same_samples(
    default_export: Path, tmp_path: Path, options: tuple[str, ...]
) -> None:
    ours = _sr(["--model", str(default_export)], tmp_path / "onnx", *options)
    reference = _sr([], tmp_path / "torch", *options)
    assert len(ours) == len(reference) >= 2
    for a, b in zip(ours, reference, strict=True):
        assert (np.abs(a - b) <= 1).mean() >= 0.999


def test_a_folder_that_is_not_an_export_is_refused(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.png").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="not an srflow ONNX folder"):
        export_onnx(tiny("srflow"), tmp_path / "photos")
    folder = export_onnx(tiny("srflow"), tmp_path / "export")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["graphs"]["sampling"] = "../outside.onnx"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="is not a file of the folder"):
        load_model(folder)
    (folder / "manifest.json").write_text("{")
    with pytest.raises(CheckpointError, match=str(folder)):
        load_model(folder)
    assert not list(tmp_path.glob(".*exporting"))


@pytest.mark.slow
def test_the_torch_free_example_runs_without_torch(default_export: Path, tmp_path: Path) -> None:
    """examples/onnx_sample.py in a fresh venv with only onnxruntime, numpy and pillow."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "onnxruntime", "numpy",
                              "pillow"], capture_output=True, text=True)  # fmt: skip
    assert install.returncode == 0, install.stderr
    assert subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode
    out = tmp_path / "out.png"
    done = subprocess.run([str(python), str(ROOT / "examples" / "onnx_sample.py"),
                           str(default_export), str(EXAMPLE), str(out), "-n", "2"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lr = np.asarray(Image.open(EXAMPLE).convert("RGB"), dtype=np.float64)
    for path in (tmp_path / "out_0.png", tmp_path / "out_1.png"):
        hr = np.asarray(Image.open(path), dtype=np.float64)
        assert hr.shape == (lr.shape[0] * 4, lr.shape[1] * 4, 3)
        down = hr.reshape(lr.shape[0], 4, lr.shape[1], 4, 3).mean(axis=(1, 3))
        assert np.abs(down - lr).mean() < 6  # a super-resolution of that image, not noise
    ncsr = export_onnx(tiny("ncsr"), tmp_path / "ncsr")  # a noise level for both graphs
    small = tmp_path / "small.png"
    Image.open(EXAMPLE).crop((0, 0, 20, 14)).save(small)
    script = [str(python), str(ROOT / "examples" / "onnx_sample.py")]
    done = subprocess.run([*script, str(ncsr), str(small), str(tmp_path / "ncsr.png")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "ncsr.png").size == (80, 56)


def test_providers_are_chosen_by_name(default_export: Path, tmp_path: Path) -> None:
    """``--provider`` names onnxruntime's providers; one this build lacks is one line."""
    ok = _sr(["--model", str(default_export), "--provider", "CPUExecutionProvider"],
             tmp_path / "cpu", "-n", "1")  # fmt: skip
    assert len(ok) == 1
    command = [sys.executable, "-m", "srflow", "sr", str(EXAMPLE), "--model", str(default_export),
               "-o", str(tmp_path / "none"), "--provider", "NoSuchExecutionProvider"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 2 and "NoSuchExecutionProvider" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_the_app_samples_and_explores_an_export(default_export: Path) -> None:
    """The app's actions with a folder as the server's model: the same samples as the model
    file, region redraws (decode only) work, what needs encoding is one line."""
    from srflow.app import actions
    from srflow.app.models import ModelStore, model_info
    from srflow.app.session import AppError, Session
    from srflow.data.image_io import image_from_pil
    from srflow.inference.pipeline import SuperResolver

    resolver = ModelStore(default_export, "cpu").get()
    assert model_info(resolver, "onnx_default").family == "SRFlow"
    photo = Image.open(EXAMPLE).convert("RGB").crop((0, 0, 32, 24))
    session, reference = Session(image=image_from_pil(photo), name="p"), Session(
        image=image_from_pil(photo), name="p")  # fmt: skip
    quiet = lambda done, what: None  # noqa: E731
    got = actions.draw_samples(session, resolver, 0.7, 2, 3, quiet)
    torch_resolver = SuperResolver(load_model(ROOT / "src/srflow/weights/default_x4.safetensors"))
    expected = actions.draw_samples(reference, torch_resolver, 0.7, 2, 3, quiet)
    assert within_one_level(got.images, expected.images) >= 0.999
    actions.start_exploring(session, resolver, 0)
    mask = torch.zeros(96, 128, dtype=torch.bool)
    mask[:32, :32] = True
    image, region, _ = actions.redraw_region(session, resolver, mask, 0.7, 1)
    assert image.shape == (3, 96, 128)
    assert region is None  # no bound on what may change: the graphs do not tell
    with pytest.raises((AppError, CapabilityError), match="ONNX export samples only") as refused:
        actions.restore_image(resolver, image_from_pil(photo), 0.5, 2)
    assert "\n" not in str(refused.value)
