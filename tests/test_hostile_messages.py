"""What srflow says about hostile or odd inputs: pickles that would run code, a closed
standard output, links that lead nowhere. One line each, naming the file."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srflow.checkpoints import CheckpointError, load_model
from srflow.cli.main import main
from srflow.inference.api import default_model_path

MARKER = Path("/tmp/srflow_hostile_marker")


class _Payload:
    """Unpickling this would create the marker file."""

    def __reduce__(self) -> tuple:
        return (Path.touch, (MARKER,))


def test_pickles_that_would_run_code_are_named_and_never_run(tmp_path: Path) -> None:
    MARKER.unlink(missing_ok=True)
    zipped, raw = tmp_path / "zipped.pth", tmp_path / "raw.pth"
    torch.save({"weight": _Payload()}, zipped)  # torch's own format
    raw.write_bytes(pickle.dumps({"weight": _Payload()}, protocol=4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's protocol warning must not reach the user
        with pytest.raises(CheckpointError) as blocked:
            load_model(zipped)
        with pytest.raises(CheckpointError) as unreadable:
            load_model(raw)
    assert not MARKER.exists()
    assert re.fullmatch(
        rf"{re.escape(str(zipped))}: not a model checkpoint \(it holds Python objects other "
        r"than tensors \(getattr\); srflow never unpickles those\)", str(blocked.value)
    )  # fmt: skip
    assert str(unreadable.value).startswith(f"{raw}: not a model checkpoint (a pickle the safe")


def test_a_closed_standard_output_is_an_error_not_lost_output() -> None:
    command = f"{sys.executable} -m srflow info {default_model_path()} >&-"
    closed = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert closed.returncode == 2
    assert closed.stderr.strip() == (
        "error: standard output is closed; send it to a file or to /dev/null"
    )
    if os.path.exists("/dev/full"):
        full = subprocess.run(["bash", "-c", command.replace(">&-", "> /dev/full")],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert full.returncode == 2 and "No space left on device" in full.stderr


def test_links_to_nothing_and_link_loops_are_noted(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "a.png")
    (folder / "loop.png").symlink_to("loop.png")
    (folder / "gone.png").symlink_to("nowhere.png")
    (folder / "sub" / "up").symlink_to("..")  # a folder loop: never followed forever
    code = main(["downscale", str(folder), "-o", str(tmp_path / "out"), "--scale", "2"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"note: {folder / 'loop.png'}: skipped, a symbolic link loop" in err
    assert f"note: {folder / 'gone.png'}: skipped, a symbolic link to nothing" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]


def test_an_animation_is_noted_and_its_first_frame_used(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    rng = np.random.default_rng(1)
    frames = [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
              for _ in range(3)]  # fmt: skip
    frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:])
    code = main(["sr", str(tmp_path / "moving.gif"), "-o", str(tmp_path / "out"), "-t", "0"])
    err = capsys.readouterr().err
    assert code in (0, 3), err
    assert f"note: {tmp_path / 'moving.gif'}: 3 frames (an animation): the first is" in err
    assert (tmp_path / "out" / "moving_sr_t0.00_s00.png").is_file()
