"""Our model checkpoint format: safetensors weights with the model config in the metadata.

A checkpoint rebuilds its own model: ``load_model(path)`` needs no other argument. The
metadata names the model family (:mod:`srflow.families`; files without it are SRFlow).
Original ``.pth`` files of every family are recognised by their keys (:mod:`srflow.compat`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from srflow.compat.official import (
    CheckpointError,
    load_official,
    load_state_dict_strict,
    read_torch_state_dict,
)
from srflow.config.loading import ConfigError, to_dict
from srflow.config.schema import ModelConfig
from srflow.families import DetectionError, family_named, family_of
from srflow.files import atomic_path
from srflow.models.conditional_flow import ConditionalFlow
from srflow.models.hcflow import HCFlow
from srflow.models.srflow import SRFlow

FORMAT = "srflow-model/1"
BOUNDS_KEY = "inverse_bounds"  # optional metadata: ConditionalFlow.inverse_bounds as JSON


def save_model(
    model: SRFlow | HCFlow, path: str | Path, *, dtype: torch.dtype | None = None
) -> Path:
    """Write ``model`` (weights, optionally cast to ``dtype``, plus config) atomically."""
    path = Path(path)
    tensors = {
        k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous().cpu()
        for k, v in model.state_dict().items()
    }
    metadata = {
        "format": FORMAT,
        "family": family_of(model.config).name,
        "config": json.dumps(to_dict(model.config)),
    }
    flow = _flow_of(model)
    if flow is not None and flow.inverse_bounds is not None:
        metadata[BOUNDS_KEY] = json.dumps(list(flow.inverse_bounds))
    return write_safetensors(path, tensors, metadata)


def _flow_of(model: torch.nn.Module) -> ConditionalFlow | None:
    flow = getattr(model, "flow", None)
    return flow if isinstance(flow, ConditionalFlow) else None


def _set_inverse_bounds(model: SRFlow | HCFlow, text: str | None, path: Path) -> None:
    """Restore the calibrated inverse bounds stored in a checkpoint's metadata."""
    flow = _flow_of(model)
    if text is None or flow is None:
        return
    try:
        bounds = tuple(float(b) for b in json.loads(text))
    except (ValueError, TypeError):
        raise CheckpointError(f"{path}: malformed {BOUNDS_KEY} metadata") from None
    if len(bounds) != len(flow.layers) or not all(b > 0 for b in bounds):
        raise CheckpointError(f"{path}: {BOUNDS_KEY} does not fit the model's flow layers")
    flow.inverse_bounds = bounds


def write_safetensors(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> Path:
    """Write a safetensors file atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)
    return path


def _metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def read_model_config(path: str | Path) -> ModelConfig:
    """The config stored in one of our checkpoints."""
    path = Path(path)
    metadata = _metadata(path)
    if metadata.get("format") != FORMAT or "config" not in metadata:
        raise CheckpointError(f"{path}: safetensors file without an srflow model config")
    try:
        family = family_named(metadata.get("family", "SRFlow"))
        return family.config_from_dict(json.loads(metadata["config"]))
    except (ConfigError, DetectionError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: invalid model config ({exc})") from None


def load_model(
    path: str | Path, *, device: torch.device | str = "cpu"
) -> SRFlow | HCFlow:
    """Load one of our ``.safetensors`` checkpoints or an original ``.pth`` of any family.

    Returns the model in eval mode (float32, on ``device``).

    Raises:
        CheckpointError: one line naming the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    if path.suffix.lower() == ".safetensors":
        config = read_model_config(path)
        model = family_of(config).build(config)
        try:
            state = load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{path}: cannot read weights ({exc})") from None
        load_state_dict_strict(model, {k: v.float() for k, v in state.items()}, str(path))
        _set_inverse_bounds(model, _metadata(path).get(BOUNDS_KEY), path)
        return model.eval().to(device)
    return load_official(read_torch_state_dict(path), source_name=str(path)).to(device)


def describe_model(model: torch.nn.Module) -> str:
    """One line naming the model's family, variant and scale (and its published name)."""
    config = model.config
    return family_of(config).describe(config)


def convert_official_checkpoint(
    source: str | Path, target: str | Path, *, stacked_blocks: tuple[int, ...] | None = None
) -> tuple[SRFlow | HCFlow, Path]:
    """Convert an original ``.pth`` of any family into our safetensors format (weights
    bit-identical); returns the loaded model and the written path."""
    state = read_torch_state_dict(source)
    model = load_official(state, stacked_blocks=stacked_blocks, source_name=str(source))
    return model, save_model(model, target)
