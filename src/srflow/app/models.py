"""The models the app has loaded, shared by all tabs (each tab names the one it uses).

The page never names a server path: it picks the default model, a model file inside one of
the folders the person who started the server allowed (``srflow app --models-dir DIR``), or a
model file uploaded in that tab. A file is loaded once however it is named (by its resolved
path, an upload by its content), and at most :data:`MAX_LOADED` of them besides the default
stay loaded.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from srflow.app.session import AppError
from srflow.checkpoints import CheckpointError
from srflow.families import family_of
from srflow.inference.api import default_model_path, load
from srflow.inference.pipeline import SuperResolver

#: Model files loaded at once besides the default (the least recently used goes first).
MAX_LOADED = 3
#: What the page calls the server's own model.
DEFAULT_LABEL = "the server's model"
#: Uploaded model files kept (the oldest is deleted first).
MAX_UPLOADS = 8
MODEL_SUFFIXES = (".safetensors", ".pth")
UPLOADED = "uploaded:"


@dataclass(frozen=True)
class ModelInfo:
    """What the Model panel shows about a loaded model."""

    description: str
    family: str
    scale: int
    parameters: int
    device: str
    name: str

    def markdown(self) -> str:
        """The panel's text."""
        return (
            f"**{self.description}**\n\n| | |\n|---|---|\n| family | {self.family} |\n"
            f"| scale | {self.scale}x |\n| parameters | {self.parameters:,} |\n"
            f"| device | {self.device} |\n| file | `{self.name}` |"
        )


def model_info(resolver: SuperResolver, name: str) -> ModelInfo:
    """Family, scale, parameter count and device of a loaded model."""
    model = resolver.model
    return ModelInfo(
        description=resolver.description,
        family=family_of(model.config).name,
        scale=resolver.scale,
        parameters=sum(p.numel() for p in model.parameters()),
        device=str(resolver.device),
        name=name,
    )


class ModelStore:
    """Loads model files once and hands the same :class:`SuperResolver` to every tab.

    Args:
        default: the server's model file (``None``: the embedded model).
        device: where to run (``auto``, ``cpu``, ``cuda``, ...).
        folders: the folders whose model files the page may load (none by default).
        uploads: where uploaded model files are kept (default: where they were uploaded).

    A tab names its model by a *key*: ``None`` (the default), a file's name within the
    allowed folders (``sub/model.safetensors``), or ``uploaded:DIGEST`` for a file it
    uploaded (:meth:`add_upload`).
    """

    def __init__(
        self, default: str | None, device: str = "auto", folders: Sequence[str | Path] = (),
        uploads: Path | None = None,
    ) -> None:  # fmt: skip
        self.device = device
        self.uploads = uploads
        fallback = default_model_path()
        self.default = default or (str(fallback) if fallback else None)
        self.folders = [Path(f).expanduser().resolve() for f in folders]
        self._uploads: OrderedDict[str, Path] = OrderedDict()
        self._loaded: OrderedDict[str, SuperResolver] = OrderedDict()  # by resolved file
        self._lock = threading.Lock()

    def choices(self) -> list[str]:
        """The keys the page may pick: the default, then the allowed folders' model files."""
        names = [DEFAULT_LABEL]
        for folder in self.folders:
            names += sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                            if p.suffix.lower() in MODEL_SUFFIXES and p.is_file())  # fmt: skip
        return names

    def add_upload(self, path: str | Path, name: str) -> str:
        """Make an uploaded model file loadable; returns its key (by content: the same file
        uploaded twice is one model). The :data:`MAX_UPLOADS` latest are kept."""
        path = Path(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        key = f"{UPLOADED}{digest}:{name}"
        with self._lock:
            if key not in self._uploads:
                if self.uploads is not None:
                    self.uploads.mkdir(parents=True, exist_ok=True)
                    path = Path(shutil.copyfile(path, self.uploads / f"{digest}{path.suffix}"))
                self._uploads[key] = path
            self._uploads.move_to_end(key)
            while len(self._uploads) > MAX_UPLOADS:
                _, oldest = self._uploads.popitem(last=False)
                if self.uploads is not None:
                    oldest.unlink(missing_ok=True)
        return key

    def file_of(self, key: str | None) -> Path:
        """The file a key names; :class:`AppError` for anything else, in the same words
        whether or not such a file exists on the server."""
        if key is None or key.strip() in ("", DEFAULT_LABEL):
            if not self.default:
                raise AppError("no default model in this install: upload a model file")
            return Path(self.default)
        if key.startswith(UPLOADED):
            if key not in self._uploads:
                raise AppError("that uploaded model is no longer on the server: upload it again")
            return self._uploads[key]
        for folder in self.folders:
            candidate = (folder / key.strip()).resolve()
            if candidate.is_relative_to(folder) and candidate.is_file() and (
                candidate.suffix.lower() in MODEL_SUFFIXES
            ):
                return candidate
        where = ("the model folders of this server" if self.folders else
                 "this server's models (start it with --models-dir DIR to offer more)")
        raise AppError(f"no model named {key.strip()!r} among {where}; or upload one")

    def label(self, key: str | None) -> str:
        """How the page names a key's model (never a server path)."""
        if key is None or key.strip() in ("", DEFAULT_LABEL):
            return f"{DEFAULT_LABEL} ({Path(self.default or '').name})"
        return key.split(":", 2)[2] if key.startswith(UPLOADED) else key.strip()

    def get(self, key: str | None = None) -> SuperResolver:
        """The model a key names, loaded on first use (see the class).

        Raises:
            AppError: no such model, not a model file, or the device is unusable.
        """
        path = self.file_of(key)
        resolved = str(path.resolve())
        with self._lock:
            if resolved not in self._loaded:
                try:
                    self._loaded[resolved] = load(resolved, device=self.device)
                except (CheckpointError, ValueError, RuntimeError, OSError) as exc:
                    text = str(exc).splitlines()[0] if str(exc) else repr(exc)
                    raise AppError(text.replace(resolved, self.label(key))) from None
            self._loaded.move_to_end(resolved)
            default = str(Path(self.default).resolve()) if self.default else None
            while len(self._loaded) > MAX_LOADED + 1:
                oldest = next(k for k in self._loaded if k != default)
                del self._loaded[oldest]
            return self._loaded[resolved]
