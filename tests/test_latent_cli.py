"""The latent-space commands end to end on a real photograph, with a tiny model file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latent_models import perturbed_tiny
from srflow.checkpoints import save_model
from srflow.cli.main import main
from srflow.latent import affected_region, latent_masks, load_latents, read_mask

# The random test model's inverse diverges on a few % of the values at these temperatures:
# written, reported on a warning line, exit status 3 (srflow.cli.divergence).
DIVERGED = 3

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("latent_cli")
    model = save_model(perturbed_tiny(torch.float32), root / "tiny.safetensors")
    photo = skimage_data.chelsea()[60:188, 150:286]  # 136x128: padded to 136x136 inside
    Image.fromarray(photo).save(root / "photo.png")
    Image.fromarray(skimage_data.coffee()[100:164, 300:364]).save(root / "texture.png")
    Image.fromarray(photo[::4, ::4]).save(root / "lr.png")  # 34x32
    mask = np.zeros((32, 34), np.uint8)
    mask[2:6, 3:9] = 255  # LR-size mask: enlarged 4x
    Image.fromarray(mask).save(root / "mask.png")
    Image.fromarray(np.full((40, 40), 255, np.uint8)).save(root / "bad_mask.png")
    return {"model": model, "root": root, "photo": root / "photo.png", "lr": root / "lr.png",
            "texture": root / "texture.png", "mask": root / "mask.png",
            "bad_mask": root / "bad_mask.png"}  # fmt: skip


def _run(files: dict[str, Path], *args: object) -> int:
    return main([*(str(a) for a in args), "--model", str(files["model"]), "--device", "cpu"])


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(np.int16)


def test_encode_decode_round_trip(files: dict[str, Path], tmp_path: Path) -> None:
    z = tmp_path / "z.safetensors"
    assert _run(files, "encode", files["photo"], "-o", z) == 0
    assert _run(files, "decode", z, "-o", tmp_path / "back.png") == 0
    assert np.array_equal(_png(tmp_path / "back.png"), _png(files["photo"]))
    assert load_latents(z).image_size == (128, 136)


def test_resample_masked_region_only(files: dict[str, Path], tmp_path: Path) -> None:
    base, z = tmp_path / "base.png", tmp_path / "z.safetensors"
    assert _run(files, "resample", files["lr"], "-o", base, "--save-latents", z,
                "--level-temperatures", "0.9", "0.7", "0.5") == DIVERGED  # fmt: skip
    again = tmp_path / "again.png"
    mask = files["mask"]
    assert _run(files, "explore", z, "-o", again, "--seed", "5", "--mask", mask) == DIVERGED
    model = perturbed_tiny(torch.float32)
    code = load_latents(z)
    mask = read_mask(files["mask"], code.image_size)
    shapes = [tuple(t.shape) for t in code.latents]
    region = affected_region(model, latent_masks(mask, shapes, code.padded_size))[0, 0]
    region = region[: code.image_size[0], : code.image_size[1]].numpy()
    a, b = _png(base), _png(again)
    assert np.array_equal(a[~region], b[~region])
    assert (a[mask.numpy()] != b[mask.numpy()]).mean() > 0.5
    # the same seed gives the same image
    assert _run(files, "resample", files["lr"], "-o", tmp_path / "c.png",
                "--level-temperatures", "0.9", "0.7", "0.5") == DIVERGED  # fmt: skip
    assert np.array_equal(_png(tmp_path / "c.png"), a)


def test_transfer_normalize_restore(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "styled.png"
    assert _run(files, "transfer", files["photo"], files["lr"], "-o", out, "--mask",
                files["mask"], "--save-latents",
                tmp_path / "t.safetensors") == DIVERGED  # fmt: skip
    assert _png(out).shape == (128, 136, 3)
    normalized = tmp_path / "normalized.png"
    assert _run(files, "normalize", files["photo"], "--mode", "spatial", "--mask",
                files["mask"], "-o", normalized, "-t", "0.5") in (0, DIVERGED)  # fmt: skip
    assert _run(files, "normalize", tmp_path / "t.safetensors", "--mode", "global",
                "-o", tmp_path / "n2.png") == DIVERGED  # fmt: skip
    restored = tmp_path / "restored.png"
    assert _run(files, "restore", files["photo"], "-o", restored, "--seed", "2") == DIVERGED
    assert _png(restored).shape == _png(files["photo"]).shape


def test_bad_inputs_give_one_error_line(files: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.png"
    cases = [
        (("resample", files["lr"], "-o", out, "--mask", files["bad_mask"]), "bad_mask.png"),
        (("transfer", files["texture"], files["lr"], "-o", out), "texture.png"),
        (("decode", files["root"] / "missing.safetensors", "-o", out), "missing.safetensors"),
        (("restore", files["root"] / "nope.png", "-o", out), "nope.png"),
    ]
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    cases.append((("decode", junk, "-o", out), "junk.safetensors"))
    z = tmp_path / "z.safetensors"
    assert _run(files, "encode", files["lr"], "-o", z) == 0  # latents of a 34x32 "HR" image
    cases.append((("decode", z, "--lr", files["lr"], "-o", out), "lr.png"))
    capsys.readouterr()
    for args, name in cases:
        assert _run(files, *args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and name in err[0], err
        assert not out.exists()
