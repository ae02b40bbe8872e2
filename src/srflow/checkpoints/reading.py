"""Read a model file once: its tensors and, for our safetensors format, its metadata.

``.pth`` files are read with ``weights_only=True``: nothing is unpickled that is not a tensor
or a plain container.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from srflow.checkpoints.errors import CheckpointError


@dataclass(frozen=True)
class ModelFile:
    """A model file's tensors and metadata (empty for a ``.pth``)."""

    path: Path
    tensors: dict[str, Tensor]
    metadata: dict[str, str]


def _starts_as_pickle(path: Path) -> bool:
    """Whether a file starts as a pickle of protocol 2 or later does."""
    try:
        with path.open("rb") as handle:
            head = handle.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _reason(exc: Exception, path: Path) -> str:
    """Why torch could not load a file, in our words: never torch's advice to turn the safe
    loader off."""
    text = str(exc)
    blocked = re.search(r"unsupported global:? (?:GLOBAL )?([\w.]+)", text, re.IGNORECASE)
    if blocked:
        return (f"it holds Python objects other than tensors ({blocked[1]}); srflow never "
                "unpickles those")  # fmt: skip
    if "Unsupported operand" in text and _starts_as_pickle(path):
        return "a pickle the safe loader cannot read; srflow never unpickles anything else"
    return "not a PyTorch file"


#: The format tag of srflow's training checkpoints (``RUN_DIR/checkpoints/*.pt``).
TRAINING_FORMAT = "srflow-train/1"


def is_safetensors(path: Path) -> bool:
    """Whether the file starts as a safetensors file does (a header length, then ``{``),
    whatever its name."""
    try:
        with path.open("rb") as handle:
            head = handle.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{"


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a ``.pth`` state dict safely. Accepts a bare state dict or ``{"state_dict": ...}``.

    Raises:
        CheckpointError: a missing, unreadable or unsafe file, or one without tensors (a
            training checkpoint of ours says to export it).
    """
    path = Path(path)
    if path.is_file() and is_safetensors(path):
        raise CheckpointError(f"{path}: a safetensors file, not a .pth checkpoint")
    try:
        with warnings.catch_warnings():  # torch's advice on pickle protocols is not ours
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        raise CheckpointError(f"{path}: not a model checkpoint ({_reason(exc, path)})") from None
    if isinstance(obj, Mapping) and obj.get("format") == TRAINING_FORMAT:
        raise CheckpointError(
            f"{path}: an srflow training checkpoint (step {obj.get('step', '?')}), not a model; "
            "`srflow export RUN_DIR model.safetensors` makes a model file of a run"
        )
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: does not hold a state dict of tensors")
    return dict(obj)


#: Most characters of metadata read from a file (ours take a few kB: the configuration and
#: one bound per flow layer).
MAX_METADATA_CHARS = 2**20


def _checked(path: Path, metadata: dict[str, str]) -> dict[str, str]:
    size = sum(len(k) + len(v) for k, v in metadata.items())
    if size > MAX_METADATA_CHARS:
        raise CheckpointError(f"{path}: {size:,} characters of metadata, more than the "
                              f"{MAX_METADATA_CHARS:,} allowed")  # fmt: skip
    return metadata


def read_safetensors(path: str | Path) -> ModelFile:
    """A safetensors file's tensors and metadata, read in one pass.

    Raises:
        CheckpointError: the file cannot be read.
    """
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = _checked(path, dict(f.metadata() or {}))
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    return ModelFile(path, tensors, metadata)


def read_metadata(path: str | Path) -> dict[str, str]:
    """Only a safetensors file's metadata (its header; no tensor is read)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return _checked(Path(path), dict(f.metadata() or {}))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def read_model_file(path: str | Path) -> ModelFile:
    """Our ``.safetensors`` (tensors and metadata) or a ``.pth`` (tensors), read once.

    Raises:
        CheckpointError: no such file, or one that cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    if path.suffix.lower() == ".safetensors" or is_safetensors(path):
        return read_safetensors(path)
    return ModelFile(path, read_state_dict(path), {})
