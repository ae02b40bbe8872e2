"""Training checkpoints: atomic writes, ``weights_only`` loads, RNG states, pruning.

A checkpoint is a ``torch.save`` dict of tensors and plain data (loadable with
``weights_only=True``): format tag, global ``step``, the resolved ``config`` (plain dict),
``model`` weights, the active ``optimizer`` state and which stage it belongs to, the ``ema``
state, the ActNorm-initialized flag, the guard's counters (skipped steps, rollbacks, lr scale;
the rollback count also selects the data stream) and the torch CPU/CUDA RNG states. The data
order is a pure function of ``(seed, stream, step)``, so no sampler state is needed.

Files: ``RUN_DIR/checkpoints/last.pt`` (always the newest) plus up to ``keep`` numbered
``step_XXXXXXXX.pt`` copies.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from srflow.checkpoints import CheckpointError, load_state_dict_strict, save_model
from srflow.config.loading import ConfigError, from_dict
from srflow.config.losses import LossWeights, trained_temperature
from srflow.families import config_from_dict, family_of
from srflow.files import atomic_file

FORMAT = "srflow-train/1"
LAST = "last.pt"


def checkpoint_dir(run_dir: Path) -> Path:
    """``RUN_DIR/checkpoints``."""
    return run_dir / "checkpoints"


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint of a run, or ``None``."""
    path = checkpoint_dir(run_dir) / LAST
    return path if path.is_file() else None


def rng_states() -> dict[str, Any]:
    """Torch CPU and (if initialized) CUDA RNG states."""
    state: dict[str, Any] = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_states(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_states` (CUDA states only when the device count matches)."""
    torch.set_rng_state(state["torch_cpu"].cpu())  # map_location may have moved it
    cuda = state.get("torch_cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def _atomic_save(obj: dict[str, Any], path: Path) -> None:
    with atomic_file(path) as handle:
        torch.save(obj, handle)


def save_checkpoint(run_dir: Path, state: dict[str, Any], *, keep: int) -> Path:
    """Write ``state`` as ``last.pt`` (and a numbered copy if ``keep``) atomically.

    Returns:
        The path of ``last.pt``.
    """
    folder = checkpoint_dir(run_dir)
    payload = {"format": FORMAT, **state}
    last = folder / LAST
    _atomic_save(payload, last)
    if keep:
        numbered = folder / f"step_{int(state['step']):08d}.pt"
        tmp = folder / f".{numbered.name}.link"
        tmp.unlink(missing_ok=True)
        try:
            os.link(last, tmp)  # same bytes, no second write
        except OSError:
            _atomic_save(payload, tmp)
        os.replace(tmp, numbered)
        for old in sorted(folder.glob("step_*.pt"))[:-keep]:
            old.unlink(missing_ok=True)
    return last


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a training checkpoint with ``weights_only=True``.

    Raises:
        CheckpointError: the file is missing, unreadable or not a training checkpoint.
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors have many types
        raise CheckpointError(f"{path}: cannot read checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an srflow training checkpoint")
    return state


def export_model(
    source: Path, target: Path, *, use_ema: bool = True, name: str | None = None
) -> Path:
    """Write the model of a training checkpoint (or of a run folder's newest checkpoint) in our
    safetensors format. ``use_ema`` takes the EMA weights when the run kept them; ``name`` is
    the name commands show for it.

    Raises:
        CheckpointError: no checkpoint, or one that cannot be read.
    """
    if source.is_dir():
        found = last_checkpoint(source)
        if found is None:
            raise CheckpointError(f"{source}: no checkpoint in this run folder")
        source = found
    payload = load_checkpoint(source)
    try:
        config = config_from_dict(payload["config"]["model"], path="model")
    except (ConfigError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{source}: invalid model config ({exc})") from None
    ema = payload.get("ema")
    weights = ema["weights"] if use_ema and ema is not None else payload["model"]
    model = family_of(config).build(config)
    load_state_dict_strict(model, weights, str(source))
    losses = payload["config"].get("train", {}).get("losses", {})
    model.trained_temperature = trained_temperature(from_dict(LossWeights, losses))
    model.name = name
    return save_model(model.eval(), target)
