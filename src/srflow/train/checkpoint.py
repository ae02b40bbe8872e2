"""Training checkpoints: atomic writes, ``weights_only`` loads, RNG states, pruning.

A checkpoint is a ``torch.save`` dict of tensors and plain data (loadable with
``weights_only=True``): format tag, global ``step``, the resolved ``config`` (plain dict),
``model`` weights, the active ``optimizer`` state and which stage it belongs to, the ``ema``
state, the ActNorm-initialized flag, the guard's counters (skipped steps, rollbacks, lr scale;
the rollback count also selects the data stream) and the torch CPU/CUDA RNG states. The data
order is a pure function of ``(seed, stream, step)``, so no sampler state is needed.

Files: ``RUN_DIR/checkpoints/last.pt`` (always the newest) plus up to ``keep`` numbered
``step_XXXXXXXX.pt`` copies (written separately: damaging one cannot damage another). Each
holds a ``digest`` (SHA-256 of every tensor's bytes and every other value), checked on
loading, so a damaged file is found, not trusted: resuming takes the newest intact one.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import torch

from srflow.checkpoints import CheckpointError, load_state_dict_strict, save_model
from srflow.checkpoints.structure import build_within
from srflow.config.loading import ConfigError, from_dict
from srflow.config.losses import LossWeights, trained_temperature
from srflow.families import config_from_dict, family_of
from srflow.files import atomic_file, remove_stale_temporaries

FORMAT = "srflow-train/1"
LAST = "last.pt"


def checkpoint_dir(run_dir: Path) -> Path:
    """``RUN_DIR/checkpoints``."""
    return run_dir / "checkpoints"


_NUMBERED = re.compile(r"^step_(\d{8,})\.pt$")


def checkpoint_files(run_dir: Path) -> list[Path]:
    """A run's checkpoint files, newest first: ``last.pt``, then the numbered ones by step."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    numbered = sorted(
        (p for p in folder.iterdir() if _NUMBERED.match(p.name)),
        key=lambda p: int(_NUMBERED.match(p.name)[1]), reverse=True,  # type: ignore[index]
    )  # fmt: skip
    last = folder / LAST
    return ([last] if last.is_file() else []) + numbered


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint file of a run (not checked), or ``None``."""
    files = checkpoint_files(run_dir)
    return files[0] if files else None


def newest_intact(
    run_dir: Path, device: torch.device | str = "cpu"
) -> tuple[Path, dict[str, Any], list[str]]:
    """The newest checkpoint that loads and matches its digest, with why each newer one was
    passed over.

    Raises:
        CheckpointError: none is intact (the message names each file and its problem).
    """
    passed: list[str] = []
    for path in checkpoint_files(run_dir):
        try:
            return path, load_checkpoint(path, device), passed
        except CheckpointError as exc:
            passed.append(str(exc))
    where = checkpoint_dir(run_dir)
    raise CheckpointError(f"{where}: no intact checkpoint to resume from ({'; '.join(passed)})")


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


def payload_digest(obj: object) -> str:
    """SHA-256 of a checkpoint's contents: each tensor's dtype, shape and bytes, every other
    value's ``repr``, in key order."""
    digest = hashlib.sha256()

    def feed(value: object) -> None:
        if isinstance(value, torch.Tensor):
            data = value.detach().cpu().contiguous()
            digest.update(f"T{data.dtype}{tuple(data.shape)}".encode())
            if data.numel():
                digest.update(data.reshape(-1).view(torch.uint8).numpy())
        elif isinstance(value, dict):
            for key in sorted(value, key=repr):
                digest.update(repr(key).encode())
                feed(value[key])
        elif isinstance(value, list | tuple):
            digest.update(f"L{len(value)}".encode())
            for item in value:
                feed(item)
        else:
            digest.update(repr(value).encode())

    feed(obj)
    return digest.hexdigest()


def save_checkpoint(run_dir: Path, state: dict[str, Any], *, keep: int) -> Path:
    """Write ``state`` as ``last.pt`` (and a numbered copy if ``keep``), each atomically and
    with its digest.

    Returns:
        The path of ``last.pt``.
    """
    folder = checkpoint_dir(run_dir)
    payload = {"format": FORMAT, **state}
    payload["digest"] = payload_digest(payload)
    last = folder / LAST
    _atomic_save(payload, last)
    if keep:
        _atomic_save(payload, folder / f"step_{int(state['step']):08d}.pt")  # its own bytes
        for old in checkpoint_files(run_dir)[1:][keep:]:
            old.unlink(missing_ok=True)
    return last


def remove_stale_files(run_dir: Path) -> list[Path]:
    """Delete what an earlier killed run left in its checkpoint folder: temporary files of
    writes that never finished, and the hard-link staging files older versions made."""
    folder = checkpoint_dir(run_dir)
    removed = remove_stale_temporaries(folder)
    for link in folder.glob(".step_*.pt.link") if folder.is_dir() else []:
        link.unlink(missing_ok=True)
        removed.append(link)
    return removed


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
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: cannot read checkpoint ({reason})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an srflow training checkpoint")
    digest = state.pop("digest", None)  # checkpoints written before digests have none
    if digest is not None and payload_digest(state) != digest:
        raise CheckpointError(f"{path}: damaged (its contents do not match its digest)")
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
        if last_checkpoint(source) is None:
            raise CheckpointError(f"{source}: no checkpoint in this run folder")
        source, payload, _ = newest_intact(source)
    else:
        payload = load_checkpoint(source)
    try:
        config = config_from_dict(payload["config"]["model"], path="model")
    except (ConfigError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{source}: invalid model config ({exc})") from None
    ema = payload.get("ema")
    weights = ema["weights"] if use_ema and ema is not None else payload["model"]
    family = family_of(config)
    model = build_within(lambda: family.build(config), weights, str(source))
    load_state_dict_strict(model, weights, str(source))
    losses = payload["config"].get("train", {}).get("losses", {})
    model.trained_temperature = trained_temperature(from_dict(LossWeights, losses))
    model.name = name
    return save_model(model.eval(), target)
