"""Resuming never starts over silently: the newest intact checkpoint is used (each one carries
a digest), damaged ones are named and passed over, none intact is refused, and what an
interrupted run left behind is cleaned up."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from srflow.checkpoints import CheckpointError
from srflow.cli.main import main
from srflow.train.checkpoint import load_checkpoint, payload_digest
from srflow.train.loop import train
from srflow.train.setup import RunDirError
from test_train import photos, tiny, train_lines  # noqa: F401 - the fixture

STEPS = ("train.steps=8", "train.checkpoint_every=2", "train.keep_checkpoints=3",
         "train.l1_pretrain_steps=0", "train.log_every=1")  # fmt: skip


@pytest.fixture
def stopped_run(photos: Path, tmp_path: Path) -> tuple[object, Path]:  # noqa: F811
    """A run stopped after step 6 (checkpoints at 2, 4, 6; last.pt is step 6)."""
    cfg = tiny(photos, *STEPS)

    def stop(step: int, hr: torch.Tensor, lr: torch.Tensor) -> tuple:
        if step == 6:
            raise KeyboardInterrupt
        return hr, lr

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "run", batch_hook=stop, progress=False)
    return cfg, tmp_path / "run"


def _resume(cfg: object, run: Path) -> tuple[int, list[str]]:
    messages: list[str] = []
    result = train(cfg, run, resume=True, progress=False, notify=messages.append)  # type: ignore[arg-type]
    return result.step, messages


def test_numbered_checkpoints_are_copies_with_digests(stopped_run) -> None:  # noqa: ANN001
    _, run = stopped_run
    folder = run / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == [
        "last.pt", "step_00000002.pt", "step_00000004.pt", "step_00000006.pt"]  # fmt: skip
    assert os.stat(folder / "last.pt").st_ino != os.stat(folder / "step_00000006.pt").st_ino
    payload = torch.load(folder / "last.pt", weights_only=True)
    digest = payload.pop("digest")
    assert payload_digest(payload) == digest and payload["step"] == 6


def test_without_last_pt_the_newest_numbered_one_is_resumed(stopped_run) -> None:  # noqa: ANN001
    cfg, run = stopped_run
    (run / "checkpoints" / "last.pt").unlink()
    step, messages = _resume(cfg, run)
    assert step == 8 and any("at step 6" in m and "step_00000006.pt" in m for m in messages)
    steps = [r["step"] for r in train_lines(run)]
    assert steps == sorted(set(steps)) and steps[-1] == 8  # each step logged once


def test_damaged_checkpoints_are_passed_over_by_name(stopped_run) -> None:  # noqa: ANN001
    cfg, run = stopped_run
    folder = run / "checkpoints"
    data = (folder / "last.pt").read_bytes()
    (folder / "last.pt").write_bytes(data[: len(data) // 2])  # truncated
    newest = folder / "step_00000006.pt"  # a valid file whose weights changed: digest mismatch
    payload = torch.load(newest, weights_only=True)
    name = next(iter(payload["model"]))
    payload["model"][name] = payload["model"][name] + 1
    torch.save(payload, newest)
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(newest)
    step, messages = _resume(cfg, run)
    assert step == 8
    skipped = [m for m in messages if m.startswith("skipping")]
    assert len(skipped) == 2 and "last.pt: cannot read checkpoint" in skipped[0]
    assert "step_00000006.pt: damaged" in skipped[1]
    assert any("at step 4" in m and "step_00000004.pt" in m for m in messages)


def test_no_intact_checkpoint_or_none_at_all_is_refused(stopped_run) -> None:  # noqa: ANN001
    cfg, run = stopped_run
    for path in (run / "checkpoints").iterdir():
        path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="no intact checkpoint to resume from"):
        train(cfg, run, resume=True, progress=False)  # type: ignore[arg-type]
    shutil.rmtree(run / "checkpoints")
    with pytest.raises(RunDirError, match="holds a run but no checkpoint to resume from"):
        train(cfg, run, resume=True, progress=False)  # type: ignore[arg-type]


def test_an_interrupted_runs_leftovers_are_removed(stopped_run) -> None:  # noqa: ANN001
    cfg, run = stopped_run
    folder = run / "checkpoints"
    dead = 2**22 + 12345  # above the usual pid_max: no such process
    stale = [folder / f".last.pt.{dead}.abcd1234.tmp", folder / ".step_00000006.pt.link"]
    alive = folder / f".last.pt.{os.getpid()}.abcd1234.tmp"  # a write still running
    for path in (*stale, alive):
        path.write_bytes(b"partial")
    assert _resume(cfg, run)[0] == 8
    assert not any(p.exists() for p in stale) and alive.exists()


def test_resume_of_a_folder_that_does_not_exist_says_so(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["train", "--resume", "--out", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere: no run to resume there" in err and "srflow train CONFIG --out" in err
