"""The models the app has loaded, shared by all tabs (each tab names the one it uses)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from srflow.app.session import AppError
from srflow.checkpoints import CheckpointError
from srflow.families import family_of
from srflow.inference.api import default_model_path, load
from srflow.inference.pipeline import SuperResolver


@dataclass(frozen=True)
class ModelInfo:
    """What the Model panel shows about a loaded model."""

    description: str
    family: str
    scale: int
    parameters: int
    device: str
    path: str

    def markdown(self) -> str:
        """The panel's text."""
        return (
            f"**{self.description}**\n\n| | |\n|---|---|\n| family | {self.family} |\n"
            f"| scale | {self.scale}x |\n| parameters | {self.parameters:,} |\n"
            f"| device | {self.device} |\n| file | `{self.path}` |"
        )


def model_info(resolver: SuperResolver, path: str) -> ModelInfo:
    """Family, scale, parameter count and device of a loaded model."""
    model = resolver.model
    return ModelInfo(
        description=resolver.description,
        family=family_of(model.config).name,
        scale=resolver.scale,
        parameters=sum(p.numel() for p in model.parameters()),
        device=str(resolver.device),
        path=path,
    )


class ModelStore:
    """Loads checkpoints once and hands the same :class:`SuperResolver` to every tab.

    Args:
        default: the server's model file (``None``: the embedded model).
        device: where to run (``auto``, ``cpu``, ``cuda``, ...).
    """

    def __init__(self, default: str | None, device: str = "auto") -> None:
        self.device = device
        fallback = default_model_path()
        self.default = default or (str(fallback) if fallback else None)
        self._loaded: dict[str, SuperResolver] = {}
        self._lock = threading.Lock()

    def get(self, path: str | None = None) -> SuperResolver:
        """The model in ``path`` (``None``: the default), loaded on first use.

        Raises:
            AppError: the file is missing or not a model, or the device is unusable.
        """
        key = self.resolve(path)
        with self._lock:
            if key not in self._loaded:
                try:
                    self._loaded[key] = load(key, device=self.device)
                except (CheckpointError, ValueError, RuntimeError, OSError) as exc:
                    raise AppError(str(exc).splitlines()[0] if str(exc) else repr(exc)) from None
            return self._loaded[key]

    def resolve(self, path: str | None) -> str:
        """The file a path names (``None`` or empty: the default)."""
        text = (path or "").strip() or self.default
        if not text:
            raise AppError("no default model in this install: name a checkpoint file")
        return str(Path(text).expanduser())
