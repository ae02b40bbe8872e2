"""``srflow.load``: the one-line entry point of the Python API."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from srflow.checkpoints import CheckpointError
from srflow.families import FAMILIES
from srflow.inference.pipeline import SuperResolver

DEFAULT_MODEL_NAME = "default_x4.safetensors"
MODEL_HELP = (
    "an srflow .safetensors (ours, or trained with `srflow train`) or a published .pth of "
    f"any family ({', '.join(f.name for f in FAMILIES)}: SRFlow_DF2K_4X.pth, "
    "SRFlow-DA's 200000_G_X4.pth, SR_DF2K_X4_HCFlow++.pth, ...), detected from its keys "
    "(docs/models.md)"
)


def default_model_path() -> Path | None:
    """The 4x model embedded in the package (``srflow/weights/``), if this install has one."""
    path = Path(str(resources.files("srflow") / "weights" / DEFAULT_MODEL_NAME))
    return path if path.is_file() else None


def missing_default_model_message(option: str = "a model path") -> str:
    """One line saying that no default model is installed and what to pass instead."""
    expected = Path(str(resources.files("srflow"))) / "weights" / DEFAULT_MODEL_NAME
    return f"no default model in this install ({expected} is missing); pass {option}: {MODEL_HELP}"


def load(
    path: str | Path | None = None, *, device: str = "auto", half: bool = False
) -> SuperResolver:
    """Load a model for super-resolution.

    Args:
        path: our ``.safetensors`` checkpoint or a published ``.pth`` of any family
            (detected from its keys); ``None`` loads the embedded default 4x model.
        device: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto``.
        half: float16 inference (GPU only).

    Returns:
        A :class:`SuperResolver`; call ``.super_resolve(image, temperature=..., samples=...,
        seed=..., tile=...)`` with a Pillow image, a file path or a ``(3, h, w)`` tensor.
        Its ``description`` says which model was detected (``SRFlow-DA-R 4x (published
        SRFlowDA-R_4X)``).

    Raises:
        CheckpointError: if the file is missing or not a model (or no default is installed).
        ValueError: for an unavailable device or ``half`` on the CPU.

    Example::

        import srflow
        model = srflow.load()  # the embedded model; or srflow.load("SRFlow_DF2K_4X.pth")
        images = model.super_resolve("photo.png", temperature=0.8, samples=4, seed=0)
    """
    if path is None:
        path = default_model_path()
        if path is None:
            raise CheckpointError(missing_default_model_message())
    return SuperResolver.from_path(path, device, half)
