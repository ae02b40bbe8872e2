"""Input and output helpers of the latent-space commands (``srflow encode`` etc.)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from torch import Tensor

from srflow.cli.common import (
    CliError,
    load_flow_model,
    resolve_model,
    seed_arg,
    temperature_arg,
)
from srflow.data.image_io import ImageReadError, read_image, write_image
from srflow.latent import LatentCode, LatentFileError, check_compatible, load_latents, read_mask
from srflow.models.contract import FlowSR

logger = logging.getLogger(__name__)
LATENT_SUFFIX = ".safetensors"


def add_common(p: argparse.ArgumentParser, *, draws: bool = True) -> None:
    """``--model``, ``--seed`` and ``--device``."""
    seed_help = "random seed (same seed, same output)"
    if not draws:
        seed_help = "random seed (this command draws nothing; accepted for uniformity)"
    p.add_argument("--model", help="model file (.safetensors or original .pth); default: embedded")
    p.add_argument("--seed", type=seed_arg, default=0, help=seed_help)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto")


def add_temperatures(p: argparse.ArgumentParser, default: float) -> None:
    """``-t`` and ``--level-temperatures``."""
    p.add_argument(
        "-t", "--temperature", type=temperature_arg, default=default,
        help=f"latent standard deviation (default {default})",
    )  # fmt: skip
    p.add_argument(
        "--level-temperatures", type=temperature_arg, nargs="+", metavar="T",
        help="one temperature per flow level (level 1 first) or per latent tensor",
    )  # fmt: skip


def temperatures(args: argparse.Namespace) -> float | list[float]:
    """The temperature option(s) as given."""
    return args.level_temperatures if args.level_temperatures else args.temperature


def load(args: argparse.Namespace) -> FlowSR:
    """The model of ``--model`` (or the embedded one) on ``--device``."""
    return load_flow_model(resolve_model(args.model), args.device)


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (the same numbers on every device)."""
    return torch.Generator().manual_seed(seed)


def read_rgb(path: Path, model: FlowSR) -> Tensor:
    """An image file as ``(3, H, W)`` on the model's device (alpha dropped, with a note)."""
    try:
        loaded = read_image(path)
    except ImageReadError as exc:
        raise CliError(str(exc)) from None
    if loaded.alpha is not None:
        logger.warning("%s: the alpha channel is ignored", path)
    return loaded.rgb.to(next(model.parameters()).device)


def is_latents_file(path: Path) -> bool:
    """Whether ``path`` names a latents file (by its suffix)."""
    return path.suffix.lower() == LATENT_SUFFIX


def read_code(path: Path, model: FlowSR) -> LatentCode:
    """A latents file checked against the model, on the model's device."""
    try:
        code = load_latents(path)
        check_compatible(model, code, str(path))
    except LatentFileError as exc:
        raise CliError(str(exc)) from None
    device = next(model.parameters()).device
    return LatentCode(
        [z.to(device, torch.float32) for z in code.latents], code.lr.to(device, torch.float32),
        code.image_size, code.scale, code.model_hash, code.noise_level,
    )  # fmt: skip


def read_mask_for(
    path: Path | None, hr_size: tuple[int, int], device: torch.device
) -> Tensor | None:
    """The mask file at the HR size, or ``None``."""
    if path is None:
        return None
    try:
        return read_mask(path, hr_size).to(device)
    except ImageReadError as exc:
        raise CliError(str(exc)) from None


def write_rgb(path: Path, image: Tensor) -> None:
    """Write ``(3, H, W)`` (clamped to [0, 1]) atomically."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(path, image.detach().float().clamp(0, 1).cpu())
    except (OSError, ValueError) as exc:
        raise CliError(f"{path}: cannot write ({exc})") from None
    print(f"wrote {path}")


def write_code(path: Path | None, code: LatentCode) -> None:
    """Save a latent code when ``path`` is given."""
    if path is None:
        return
    from srflow.latent import save_latents

    try:
        save_latents(path, code)
    except OSError as exc:
        raise CliError(f"{path}: cannot write ({exc.strerror or exc})") from None
    print(f"wrote {path}")
