"""Training: loss decrease, exact resume, non-finite guard, DDP equivalence, config errors, CLI."""

from __future__ import annotations

import json
import logging
import math
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from srflow.checkpoints import describe_model, load_model
from srflow.config.loading import ConfigError
from srflow.config.training import TrainConfig
from srflow.families import load_preset
from srflow.families.srflow_objective import dequantized_nll
from srflow.models.srflow import SRFlow
from srflow.train.checkpoint import load_checkpoint
from srflow.train.config import RunConfig, load_run_config
from srflow.train.guard import NonFiniteGuard, TrainingDivergedError, optimizer_step
from srflow.train.loop import train
from srflow.train.schedule import learning_rate, phase_at
from srflow.train.setup import RunDirError

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real photographs (scikit-image's bundled images) as PNG files, plus a val folder."""
    root = tmp_path_factory.mktemp("photos")
    (root / "train").mkdir()
    (root / "val").mkdir()
    for name in ("astronaut", "chelsea", "coffee"):
        Image.fromarray(getattr(skimage_data, name)()).save(root / "train" / f"{name}.png")
    Image.fromarray(skimage_data.rocket()[:200, :200]).save(root / "val" / "rocket.png")
    return root


def tiny(photos: Path, *overrides: str) -> RunConfig:
    return load_run_config(
        "train_tiny", [f"data.train_hr={photos / 'train'}", "data.val_hr=null", *overrides]
    )


def train_lines(run_dir: Path, kind: str = "train") -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def test_nll_decreases(photos: Path, tmp_path: Path) -> None:
    cfg = tiny(photos, "train.l1_pretrain_steps=0", "train.steps=40", "train.log_every=10",
               "train.encoder_freeze_fraction=0", "train.checkpoint_every=0")  # fmt: skip
    result = train(cfg, tmp_path / "run", progress=False)
    losses = [r["bits_per_dim"] for r in train_lines(tmp_path / "run")]
    assert result.step == 40 and len(losses) == 4
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 0.3, losses


def test_l1_stage_trains_only_the_encoder(photos: Path, tmp_path: Path) -> None:
    cfg = tiny(photos, "train.l1_pretrain_steps=30", "train.steps=0", "train.log_every=10",
               "train.l1_lr=1e-3", "train.lr_milestones=[1.0]")  # fmt: skip
    train(cfg, tmp_path / "run", progress=False)
    lines = train_lines(tmp_path / "run")
    assert [r["stage"] for r in lines] == ["l1"] * 3
    assert lines[-1]["loss"] < 0.8 * lines[0]["loss"], lines
    torch.manual_seed(cfg.train.seed)
    fresh = SRFlow(cfg.model, generator=torch.Generator().manual_seed(cfg.train.seed)).state_dict()
    trained = load_file(tmp_path / "run" / "model.safetensors")
    assert all(torch.equal(trained[k], v) for k, v in fresh.items() if k.startswith("flow."))
    assert not torch.equal(trained["encoder.conv_last.weight"], fresh["encoder.conv_last.weight"])


class Crash(RuntimeError):
    pass


def test_resume_is_bit_identical(photos: Path, tmp_path: Path) -> None:
    """Crash after the step-5 checkpoint, resume: weights, EMA and Adam state match exactly."""
    cfg = tiny(photos, "train.checkpoint_every=5", "train.ema_decay=0.9")
    full = train(cfg, tmp_path / "full", progress=False)

    def crash_at_5(step: int, hr: torch.Tensor, lr: torch.Tensor) -> tuple:
        if step == 5:
            raise Crash("simulated kill")
        return hr, lr

    with pytest.raises(Crash):
        train(cfg, tmp_path / "resumed", batch_hook=crash_at_5, progress=False)
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")["step"] == 5
    with pytest.raises(RunDirError):
        train(cfg, tmp_path / "resumed", progress=False)
    resumed = train(cfg, tmp_path / "resumed", resume=True, progress=False)
    assert resumed.step == full.step == 10
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    for key in ("model",):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    assert all(torch.equal(v, b["ema"]["weights"][k]) for k, v in a["ema"]["weights"].items())
    for pid, state in a["optimizer"]["state"].items():
        assert all(torch.equal(v, b["optimizer"]["state"][pid][k]) for k, v in state.items())
    exported = load_model(tmp_path / "resumed" / "model.safetensors").state_dict()
    assert all(torch.equal(v, a["ema"]["weights"][k]) for k, v in exported.items())


def test_resume_logs_each_step_once_and_says_where_it_resumes(
    photos: Path, tmp_path: Path
) -> None:
    """Killed after logging step 7 but checkpointed earlier: the resumed run's log holds each
    step once, with the values of an uninterrupted run, and a cut-off line is dropped."""
    cfg = tiny(photos, "train.checkpoint_every=5", "train.log_every=1")
    full = train_lines(train(cfg, tmp_path / "full", progress=False).run_dir)

    def crash_at_7(step: int, hr: torch.Tensor, lr: torch.Tensor) -> tuple:
        if step == 7:
            raise Crash("simulated kill")
        return hr, lr

    run = tmp_path / "resumed"
    with pytest.raises(Crash):
        train(cfg, run, batch_hook=crash_at_7, progress=False)
    assert [r["step"] for r in train_lines(run)] == [1, 2, 3, 4, 5, 6, 7]
    saved = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
    assert saved < 7  # so step 7 was logged by the killed run and is run again
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"kind": "train", "step": 8, "lo')  # the kill cut this line short
    messages: list[str] = []
    train(cfg, run, resume=True, progress=False, notify=messages.append)
    assert messages == [f"resuming {run} at step {saved} of 10 (last.pt)"]
    resumed = train_lines(run)
    assert [r["step"] for r in resumed] == [r["step"] for r in full] == list(range(1, 11))
    assert [r["loss"] for r in resumed] == [r["loss"] for r in full]  # bit-identical resume
    (event,) = [r for r in train_lines(run, "event") if r.get("event") == "resumed"]
    assert event["step"] == saved


def test_nonfinite_batches_are_skipped_then_rolled_back(
    photos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = tiny(photos, "train.max_nonfinite=3", "train.nonfinite_window=10",
               "train.log_every=1", "train.checkpoint_every=4")  # fmt: skip
    injected = []

    def poison(step: int, hr: torch.Tensor, lr: torch.Tensor) -> tuple:
        if step >= 6 and len(injected) < 3:  # a one-off burst of corrupt batches
            injected.append(step)
            hr = hr.clone()
            hr[0, 0, 0, 0] = float("nan")
        return hr, lr

    with caplog.at_level(logging.WARNING):
        result = train(cfg, tmp_path / "run", batch_hook=poison, progress=False)
    assert injected == [6, 7, 8]
    assert result.skipped_total == 3 and result.rollbacks == 1 and result.step == 10
    assert any("ROLLBACK 1/3" in r.message for r in caplog.records)
    events = train_lines(tmp_path / "run", "event")
    assert events[0]["event"] == "rollback" and events[0]["to_step"] == 8
    final = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert final["guard"] == {"skipped_total": 3, "rollbacks": 1, "lr_scale": 0.5}
    assert all(torch.isfinite(v).all() for v in final["model"].values())


def test_persistent_nonfinite_losses_stop_the_run(photos: Path, tmp_path: Path) -> None:
    cfg = tiny(photos, "train.max_nonfinite=2", "train.nonfinite_window=4",
               "train.max_rollbacks=1", "train.log_every=1")  # fmt: skip

    def always_nan(step: int, hr: torch.Tensor, lr: torch.Tensor) -> tuple:
        return (hr * float("nan") if step >= 3 else hr), lr

    with pytest.raises(TrainingDivergedError, match="after 1 rollback"):
        train(cfg, tmp_path / "run", batch_hook=always_nan, progress=False)
    final = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert all(torch.isfinite(v).all() for v in final["model"].values())


def test_skipped_step_changes_nothing() -> None:
    params = [torch.nn.Parameter(torch.randn(4)), torch.nn.Parameter(torch.randn(2, 2))]
    optimizer = torch.optim.Adam(params, lr=0.1, fused=True)
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer_step(optimizer, torch.zeros(()))
    before = [p.detach().clone() for p in params]
    state = {k: v.clone() for k, v in optimizer.state[params[0]].items()}
    for p in params:
        p.grad = torch.full_like(p, float("nan"))
    bad = NonFiniteGuard.is_bad(torch.tensor(1.0), torch.tensor(float("nan")))
    optimizer_step(optimizer, bad)
    assert all(torch.equal(a, p) for a, p in zip(before, params, strict=True))
    assert all(torch.equal(v, optimizer.state[params[0]][k]) for k, v in state.items())


def test_guard_counts_within_a_window() -> None:
    guard = NonFiniteGuard(window=4, max_nonfinite=2, device=torch.device("cpu"))
    for step, flag in enumerate([1, 0, 0, 0, 1, 0]):  # never two within 4 steps
        guard.record(step, torch.tensor(float(flag)))
    assert guard.check().tripped is False and guard.skipped_total == 2
    guard.record(6, torch.tensor(1.0))  # steps 4 and 6: two within 4
    report = guard.check()
    assert report.tripped and report.skipped == 1 and guard.skipped_total == 3


def test_dequantized_nll_matches_the_model() -> None:
    model = SRFlow(load_preset("tiny"))
    hr, lr = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 8, 8)
    expected = model.nll_bits_per_dim(hr, lr, dequantize=True, generator=torch.Generator())
    uniform = torch.rand(hr.shape, generator=torch.Generator())
    torch.testing.assert_close(dequantized_nll(model, hr, lr, uniform), expected)


def test_schedule_halves_at_published_fractions() -> None:
    tc = TrainConfig(l1_pretrain_steps=10, steps=100, encoder_freeze_fraction=0.5)
    lrs = [learning_rate(10 + s, tc) for s in (0, 49, 50, 74, 75, 90, 95, 99)]
    assert lrs == [5e-4, 5e-4, 2.5e-4, 2.5e-4, 1.25e-4, 6.25e-5, 3.125e-5, 3.125e-5]
    assert [phase_at(s, tc) for s in (9, 10, 59, 60)] == ["l1", "nll_frozen", "nll_frozen", "nll"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, cfg: RunConfig, run_dir: Path, port: int) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
    torch.set_num_threads(1)
    train(cfg, run_dir, progress=False)


def test_ddp_two_gloo_processes_match_single_process(photos: Path, tmp_path: Path) -> None:
    """2 ranks x 2 samples = 1 process x 4 samples, through L1, frozen-encoder and full NLL.

    DDP sums gradients in a different order than one process; Adam rescales gradient entries
    that are pure rounding noise (e.g. ActNorm biases right after their data-dependent init,
    whose exact gradient is 0) to +-lr, so with eps=1e-8 the runs drift by ~lr. A larger eps
    keeps such entries negligible while real differences (shards, noise, init) still show.
    """
    cfg = tiny(photos, "train.steps=6", "train.ema_decay=0.9", "train.checkpoint_every=0",
               "train.adam_eps=1e-4")  # fmt: skip
    torch.multiprocessing.spawn(
        _ddp_worker, args=(cfg, tmp_path / "ddp", _free_port()), nprocs=2, join=True
    )
    train(cfg, tmp_path / "single", progress=False)
    ddp = load_file(tmp_path / "ddp" / "model.safetensors")
    single = load_file(tmp_path / "single" / "model.safetensors")
    worst = max((ddp[k] - v).abs().max().item() for k, v in single.items())
    assert worst < 1e-5, worst
    assert len(train_lines(tmp_path / "ddp")) == len(train_lines(tmp_path / "single"))


def test_config_errors_name_the_key(photos: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key 'train.lrr'"):
        tiny(photos, "train.lrr=1e-3")
    with pytest.raises(ConfigError, match="train.steps: expected int"):
        tiny(photos, "train.steps=many")
    with pytest.raises(ConfigError, match="patch_size=30 must be a multiple"):
        tiny(photos, "data.patch_size=30")
    path = tmp_path / "bad.yaml"
    path.write_text("model: {scale: 4}\ndata: {train_hr: x, patch: 64}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*'data.patch'.*did you mean 'patch_size'"):
        load_run_config(path)


def test_cli_writes_a_complete_run_folder(photos: Path, tmp_path: Path) -> None:
    from srflow.cli.train import main

    out = tmp_path / "run"
    sets = [f"data.train_hr={photos / 'train'}", f"data.val_hr={photos / 'val'}"]
    args = ["train_tiny", "--set", sets[0], "--set", sets[1], "--out", str(out), "--no-progress"]
    assert main(args) == 0
    assert {"config.yaml", "command.txt", "metrics.jsonl", "model.safetensors"} <= {
        p.name for p in out.iterdir()
    }
    assert load_run_config(out / "config.yaml") == load_run_config("train_tiny", sets)
    grid = np.asarray(Image.open(out / "samples" / "step_00000010.png"))
    assert grid.shape == (64, 64 * 4, 3)  # LR-bicubic | T=0 | T=0.8 | HR, one 64 px row
    val = train_lines(out, "val")[-1]
    assert {"nll_bpd", "psnr_0", "lr_psnr_0", "psnr_0.8", "lr_psnr_0.8"} <= set(val)
    assert load_model(out / "model.safetensors").config == load_preset("train_tiny")
    assert main(args) == 2  # the folder holds a run: needs --resume
    assert main(["--resume", "--out", str(out), "--no-progress"]) == 0  # nothing left to do
    # export: the newest checkpoint's EMA weights (train_tiny keeps none: the raw weights) equal
    # the final model written by the run
    from srflow.cli.main import main as srflow_main

    exported = tmp_path / "exported.safetensors"
    assert srflow_main(["export", str(out), str(exported)]) == 0
    final, again = load_file(out / "model.safetensors"), load_file(exported)
    assert final.keys() == again.keys()
    assert all(torch.equal(final[k], again[k]) for k in final)
    assert srflow_main(["export", str(tmp_path), str(tmp_path / "x.safetensors")]) == 2
    assert not (tmp_path / "x.safetensors").exists()
    named = tmp_path / "named.safetensors"
    assert srflow_main(["export", str(out), str(named), "--name", "my photos 4x"]) == 0
    assert describe_model(load_model(named)) == "SRFlow 4x (my photos 4x)"
    assert describe_model(load_model(exported)) == "SRFlow 4x (custom configuration)"


def test_ctrl_c_saves_the_current_step_and_a_second_one_quits_at_once(
    photos: Path, tmp_path: Path
) -> None:
    import os
    import signal

    from srflow.train.interrupt import TrainingInterrupted

    cfg = tiny(photos, "train.checkpoint_every=4")
    messages: list[str] = []

    def press(times: int):  # noqa: ANN202
        def hook(step: int, hr: torch.Tensor, lr: torch.Tensor) -> tuple:
            if step == 6:
                for _ in range(times):
                    os.kill(os.getpid(), signal.SIGINT)
            return hr, lr

        return hook

    with pytest.raises(TrainingInterrupted) as stopped:
        train(cfg, tmp_path / "run", batch_hook=press(1), progress=False,
              notify=messages.append)  # fmt: skip
    assert stopped.value.step == 7  # the step that was running completed, then it stopped
    assert "continue with `srflow train --resume --out" in str(stopped.value)
    assert messages and "Ctrl-C again quits now" in messages[-1]
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 7
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    assert train(cfg, tmp_path / "run", resume=True, progress=False).step == 10

    with pytest.raises(KeyboardInterrupt) as quit_now:
        train(cfg, tmp_path / "again", batch_hook=press(2), progress=False)
    assert not isinstance(quit_now.value, TrainingInterrupted)
    # nothing is saved on the way out: the last checkpoint is the one before (phase start, 6)
    assert load_checkpoint(tmp_path / "again" / "checkpoints" / "last.pt")["step"] <= 6
