"""Model files: one ``load_model(path)`` for every family and format, and our own format.

Our format is safetensors weights with the model's family and configuration in the metadata
(plus what the model stores besides its weights, e.g. SRFlow's calibrated inverse bounds), so
a file rebuilds its own model. ``load_model`` reads a file once (a safetensors file's
metadata and tensors together; a ``.pth`` with the safe unpickler), takes the family from the
metadata or, for an original checkpoint, from the registry's detection
(:func:`srflow.families.detect`), builds the model, loads it strictly and raises one error
type, :class:`CheckpointError`, naming the file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor

from srflow.checkpoints.errors import CheckpointError
from srflow.checkpoints.reading import (
    ModelFile,
    is_safetensors,
    read_metadata,
    read_model_file,
    read_state_dict,
)
from srflow.checkpoints.structure import build_within, mismatches
from srflow.config.loading import ConfigError, to_dict
from srflow.families import (
    FAMILY_KEY,
    Detection,
    DetectionError,
    config_from_dict,
    describe,
    detect,
    family_of,
    original_to_ours,
)
from srflow.files import atomic_path
from srflow.models.contract import FlowSR
from srflow.models.onnx_model import MANIFEST, OnnxFlowSR, providers_for, read_manifest

logger = logging.getLogger(__name__)
FORMAT = "srflow-model/1"
#: Files written before models were tagged name no family: they are SRFlow's.
UNTAGGED_FAMILY = "SRFlow"


def save_model(model: FlowSR, path: str | Path, *, dtype: torch.dtype | None = None) -> Path:
    """Write ``model`` (weights, optionally cast to ``dtype``, plus family and config)
    atomically."""
    tensors = {
        k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous().cpu()
        for k, v in model.state_dict().items()
    }
    metadata = {
        "format": FORMAT,
        "family": family_of(model.config).name,
        "config": json.dumps(to_dict(model.config)),
        **model.checkpoint_metadata(),
    }
    if model.trained_temperature is not None:
        metadata["trained_temperature"] = repr(float(model.trained_temperature))
    if model.name:
        metadata["name"] = model.name
    return write_safetensors(path, tensors, metadata)


def write_safetensors(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> Path:
    """Write a safetensors file atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)
    return path


#: Longest ``config`` metadata read (the published configurations take under 1 kB).
MAX_CONFIG_BYTES = 64 * 1024


def _config_of(path: Path, metadata: Mapping[str, str]) -> Any:
    if metadata.get("format") != FORMAT or "config" not in metadata:
        raise CheckpointError(f"{path}: safetensors file without an srflow model config")
    if (size := len(metadata["config"])) > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{path}: invalid model config ({size:,} characters, more "
                              f"than the {MAX_CONFIG_BYTES:,} allowed)")  # fmt: skip
    try:
        options = json.loads(metadata["config"])
        if not isinstance(options, dict):
            raise ConfigError("not a mapping")
        family = metadata.get("family", UNTAGGED_FAMILY)
        return config_from_dict({FAMILY_KEY: family, **options}, path="config")
    except (ConfigError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: invalid model config ({exc})") from None
    except RecursionError:
        raise CheckpointError(f"{path}: invalid model config (nested too deeply)") from None


def read_model_config(path: str | Path) -> Any:
    """The configuration stored in one of our model files (only its header is read)."""
    path = Path(path)
    return _config_of(path, read_metadata(path))


def load_state_dict_strict(model: torch.nn.Module, state_dict: Mapping[str, Tensor], source: str
                           ) -> None:  # fmt: skip
    """``load_state_dict(strict=True)`` with a one-line error naming missing, unexpected and
    misshapen keys."""
    problem = mismatches({k: v.shape for k, v in model.state_dict().items()}, state_dict)
    if problem:
        raise CheckpointError(f"{source}: does not match the model: {problem}")
    model.load_state_dict(dict(state_dict), strict=True)


def _from_ours(file: ModelFile) -> FlowSR:
    config = _config_of(file.path, file.metadata)
    family = family_of(config)
    state = {k: v.float() for k, v in file.tensors.items()}
    model = build_within(lambda: family.build(config), state, str(file.path))
    load_state_dict_strict(model, state, str(file.path))
    try:
        model.load_checkpoint_metadata(file.metadata)
        if "trained_temperature" in file.metadata:
            model.trained_temperature = float(file.metadata["trained_temperature"])
        model.name = file.metadata.get("name") or None
    except ValueError as exc:
        raise CheckpointError(f"{file.path}: {exc}") from None
    return model


def load_original(
    source: str | Path | Mapping[str, Tensor], *, config: Any = None,
    stacked_blocks: tuple[int, ...] | None = None, source_name: str | None = None,
) -> FlowSR:  # fmt: skip
    """A model from an original checkpoint of any family, its configuration detected from
    the keys.

    Args:
        source: path of an original ``.pth`` (``SRFlow_DF2K_4X.pth``, SRFlow-DA's
            ``200000_G_X4.pth``, HCFlow's ``SR_DF2K_X4_HCFlow++.pth``, ...) or its state dict.
        config: the configuration, if known (otherwise detected from the keys).
        stacked_blocks: the stacked RRDB block indices, needed only for SRFlow layouts other
            than the published ones (or all blocks stacked).
        source_name: how to name the source in error messages.

    Returns:
        The model in eval mode, float32, on the CPU.
    """
    name = source_name or (str(source) if isinstance(source, str | Path) else "state dict")
    state = read_state_dict(source) if isinstance(source, str | Path) else dict(source)
    try:
        if config is None:
            detection = detect(state, stacked_blocks=stacked_blocks)
        else:
            family = family_of(config)
            detection = Detection(family, config, family.published_for(config))
    except (DetectionError, KeyError) as exc:
        raise CheckpointError(f"{name}: {exc}") from None
    model = detection.family.build(detection.config)
    load_state_dict_strict(model, original_to_ours(state, detection), name)
    logger.info("%s: detected %s", name, detection.describe())
    return model.eval()


def load_model(path: str | Path, *, device: torch.device | str = "cpu") -> FlowSR:
    """Load one of our ``.safetensors`` files, an original ``.pth`` of any family or a folder
    that ``srflow export-onnx`` wrote (run by onnxruntime on ``device``'s providers).

    Returns:
        The model in eval mode (float32, on ``device``).

    Raises:
        CheckpointError: one line naming the file and the problem.
    """
    if Path(path).is_dir() and (Path(path) / MANIFEST).is_file():
        return load_onnx_folder(Path(path), str(device))
    file = read_model_file(path)
    if file.metadata or file.path.suffix.lower() == ".safetensors":
        model = _from_ours(file)
    else:
        model = load_original(file.tensors, source_name=str(file.path))
    return model.eval().to(device)


def load_onnx_folder(folder: Path, device: str = "cpu") -> FlowSR:
    """An ``srflow export-onnx`` folder as a model (:class:`~srflow.models.onnx_model.OnnxFlowSR`).

    Raises:
        CheckpointError: one line naming the folder and the problem.
    """
    try:
        manifest = read_manifest(folder)
    except (OSError, ValueError) as exc:  # json's errors are ValueErrors
        raise CheckpointError(f"{folder}: {exc}") from None
    options = {"format": FORMAT, "family": str(manifest["family"]),
               "config": json.dumps(manifest["config"])}  # fmt: skip
    config = _config_of(folder / MANIFEST, options)
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise CheckpointError(f"{folder}: an ONNX export needs onnxruntime "
                              "(pip install 'srflow[onnx]')") from None  # fmt: skip
    try:
        return OnnxFlowSR(config, manifest, folder, providers_for(device)).eval()
    except Exception as exc:  # onnxruntime reports a bad graph with its own exception types
        raise CheckpointError(f"{folder}: {str(exc).splitlines()[0]}") from None


def describe_model(model: FlowSR) -> str:
    """One line naming the model's family, variant and scale, and its published name or the
    name its file gives it (``SRFlow 4x (default_x4, srflow's embedded model)``)."""
    text = describe(model.config)
    custom = "(custom configuration)"
    if model.name and text.endswith(custom):
        return f"{text[: -len(custom)]}({model.name})"
    return text


def convert_checkpoint(
    source: str | Path, target: str | Path, *, stacked_blocks: tuple[int, ...] | None = None
) -> tuple[FlowSR, Path]:
    """Convert an original ``.pth`` of any family into our safetensors format (weights
    bit-identical); returns the loaded model and the written path.

    Raises:
        CheckpointError: one line; a file already in our format, or a training checkpoint
            of ours, says so (and what to do instead).
    """
    source = Path(source)
    if source.is_file() and is_safetensors(source):
        metadata = read_metadata(source)
        if metadata.get("format") == FORMAT:
            found = describe(read_model_config(source))
            raise CheckpointError(f"{source}: already an srflow model file ({found}); "
                                  "nothing to convert (`srflow info` shows it)")  # fmt: skip
    model = load_original(read_state_dict(source), stacked_blocks=stacked_blocks,
                          source_name=str(source))  # fmt: skip
    return model, save_model(model, target)


__all__ = [
    "FORMAT",
    "CheckpointError",
    "convert_checkpoint",
    "describe_model",
    "load_model",
    "load_original",
    "load_state_dict_strict",
    "read_model_config",
    "read_state_dict",
    "save_model",
    "write_safetensors",
]
