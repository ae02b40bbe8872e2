"""Latent files: a :class:`~srflow.latent.code.LatentCode` in safetensors with metadata.

Layout: tensors ``latent_00``, ``latent_01``, ... (encode order) and ``lr``; metadata
``format`` (``srflow-latents/1``), ``count``, ``image_size`` (``"H,W"``), ``scale``,
``model_hash``, ``shapes`` (JSON list of the latent shapes) and, for codes conditioned on a
noise level, ``noise_level``. Tensors keep their dtype, so
saving and loading is bit-exact. Files are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from safetensors import SafetensorError, safe_open

from srflow.checkpoints import write_safetensors
from srflow.latent.code import LatentCode, model_fingerprint
from srflow.models.contract import FlowSR

logger = logging.getLogger(__name__)

FORMAT = "srflow-latents/1"


class LatentFileError(ValueError):
    """A latents file is missing, unreadable, malformed or does not fit the model."""


def save_latents(path: str | Path, code: LatentCode) -> Path:
    """Write ``code`` to ``path`` atomically; returns the path."""
    path = Path(path)
    tensors = {f"latent_{i:02d}": z.detach().contiguous().cpu()
               for i, z in enumerate(code.latents)}  # fmt: skip
    tensors["lr"] = code.lr.detach().contiguous().cpu()
    metadata = {
        "format": FORMAT,
        "count": str(len(code.latents)),
        "image_size": f"{code.image_size[0]},{code.image_size[1]}",
        "scale": str(code.scale),
        "model_hash": code.model_hash,
        "shapes": json.dumps([list(z.shape) for z in code.latents]),
    }
    if code.noise_level is not None:
        metadata["noise_level"] = repr(float(code.noise_level))
    return write_safetensors(path, tensors, metadata)


def load_latents(path: str | Path) -> LatentCode:
    """Read a latents file written by :func:`save_latents`.

    Raises:
        LatentFileError: one line naming the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise LatentFileError(f"{path}: no such latents file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise LatentFileError(f"{path}: not an srflow latents file")
            count = int(metadata["count"])
            latents = [f.get_tensor(f"latent_{i:02d}") for i in range(count)]
            lr = f.get_tensor("lr")
            height, width = (int(v) for v in metadata["image_size"].split(","))
            scale = int(metadata["scale"])
            model_hash = metadata["model_hash"]
            noise = metadata.get("noise_level")
            noise_level = None if noise is None else float(noise)
    except LatentFileError:
        raise
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LatentFileError(f"{path}: cannot read latents ({reason})") from None
    return LatentCode(latents, lr, (height, width), scale, model_hash, noise_level)


def check_compatible(model: FlowSR, code: LatentCode, name: str = "latents") -> None:
    """Check that ``model`` can decode ``code``.

    Raises:
        LatentFileError: the scale or the latent shapes do not fit the model.
    """
    if code.scale != model.config.scale:
        raise LatentFileError(f"{name}: latents of a {code.scale}x model, the model is "
                              f"{model.config.scale}x")  # fmt: skip
    expected = model.latent_shapes(code.lr)
    found = [tuple(z.shape) for z in code.latents]
    if found != expected:
        raise LatentFileError(f"{name}: latent shapes {found} do not fit the model "
                              f"(expected {expected} for this LR)")  # fmt: skip
    if code.model_hash != model_fingerprint(model):
        logger.warning("%s: made by another model configuration (%s); decoding anyway",
                       name, code.model_hash)  # fmt: skip
