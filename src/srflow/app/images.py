"""Conversions between the page's values and the library's tensors: uploads (with limits),
temperatures typed as text, masks painted in an image editor, images and download names."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from srflow.app.session import AppError
from srflow.data.image_io import (
    ImageReadError,
    LoadedImage,
    image_size,
    image_to_pil,
    read_image,
)
from srflow.flows.distributions import check_temperature
from srflow.inference.naming import output_name

#: Largest LR image the app takes by default (pixels): 512 x 512.
DEFAULT_MAX_PIXELS = 512 * 512
#: Largest upload (bytes) the server accepts, in gradio's notation.
MAX_FILE_SIZE = "20mb"


def read_upload(
    path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = 1
) -> LoadedImage:
    """Read an uploaded image; :class:`AppError` (one line, naming the file as uploaded,
    never the server's path) for a file that is not an image, is truncated, or has more than
    ``max_pixels`` pixels (refused from its header, before decoding) or a side under
    ``min_side``."""
    path = Path(path)
    name = path.name
    try:
        width, height = image_size(path)
        if width * height > max_pixels:
            side = int(max_pixels**0.5)
            raise AppError(
                f"{name} is {width}x{height} pixels; this app takes at most {max_pixels} pixels "
                f"(about {side}x{side}): crop or downscale it, or run `srflow sr --tile 256` "
                "on it (any size)"
            )
        loaded = read_image(path, max_pixels=max_pixels)
    except ImageReadError as exc:  # the message names the (temporary) path: not shown
        reason = str(exc).replace(str(path), name).replace(str(path.parent), "")
        raise AppError(f"{name}: {reason.split(': ', 1)[-1]}") from None
    height, width = loaded.rgb.shape[1:]
    if min(width, height) < min_side:
        raise AppError(f"{name} is {width}x{height} pixels; this model needs at least "
                       f"{min_side}x{min_side}")  # fmt: skip
    return loaded


def parse_temperature(text: str) -> float | list[float]:
    """``"0.8"`` -> 0.8; ``"0.9 0.7 0.5"`` (or comma separated) -> one value per level."""
    parts = [p for p in re.split(r"[\s,;]+", str(text).strip()) if p]
    if not parts:
        raise AppError("temperature: give one number, or one per flow level (0.9 0.7 0.5)")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise AppError(f"temperature: not a number: {text!r}") from None
    try:
        values = [check_temperature(t) for t in numbers]
    except ValueError as exc:
        raise AppError(str(exc).split("; did you mean")[0]) from None
    return values[0] if len(values) == 1 else values


def parse_noise_level(text: str) -> float | None:
    """``""`` -> ``None`` (the model's default); ``"0.03"`` -> 0.03."""
    text = str(text or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise AppError(f"noise level: not a number: {text!r}") from None


def temperature_label(temperature: float | list[float]) -> str:
    """``0.80`` or ``0.90-0.70-0.50``: the temperature part of a download name."""
    if isinstance(temperature, list):
        return "-".join(f"{t:.2f}" for t in temperature)
    return f"{temperature:.2f}"


def sample_file_name(stem: str, temperature: float | list[float], index: int) -> str:
    """``photo_sr_t0.80_s00.png``, as ``srflow sr photo.png`` names its outputs (per-level
    temperatures are joined by ``-``)."""
    if isinstance(temperature, list):
        return f"{stem}_sr_t{temperature_label(temperature)}_s{index:02d}.png"
    return output_name(stem, "_sr", temperature, index, "png")


def to_pil(image: Tensor) -> Image.Image:
    """An 8-bit RGB image of a float ``(3, H, W)`` tensor (rounded, as written to PNG)."""
    return image_to_pil(image.detach().float().cpu())


def painted_layers(editor: dict[str, Any] | None, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """What was painted on an image editor's layers: the colour ``(3, H, W)`` and the
    coverage ``(H, W)`` in ``[0, 1]`` (the upper layer over the lower).

    Raises:
        AppError: when nothing is painted, or the layers do not have the image's size.
    """
    layers = [np.asarray(layer) for layer in (editor or {}).get("layers") or []]
    layers = [layer for layer in layers if layer.ndim == 3 and layer.shape[2] == 4]
    if not layers or not any(layer[..., 3].any() for layer in layers):
        raise AppError("paint the region on the image first (the brush)")
    if layers[0].shape[:2] != tuple(size):
        raise AppError(f"the painted layer is {layers[0].shape[1]}x{layers[0].shape[0]}, the "
                       f"image {size[1]}x{size[0]}: select the sample again")  # fmt: skip
    colour, cover = torch.zeros(3, *size), torch.zeros(size)
    for layer in layers:
        values = torch.from_numpy(layer.astype(np.float32) / 255).permute(2, 0, 1)
        alpha = values[3]
        colour = values[:3] * alpha + colour * (1 - alpha)
        cover = alpha + cover * (1 - alpha)
    return colour, cover


def painted_mask(editor: dict[str, Any] | None, size: tuple[int, int]) -> Tensor:
    """The pixels painted on an image editor's layers, as a boolean ``(H, W)`` mask
    (see :func:`painted_layers`)."""
    return painted_layers(editor, size)[1] > 0


def paint_over(image: Tensor, editor: dict[str, Any] | None) -> tuple[Tensor, Tensor]:
    """``image`` ``(3, H, W)`` with the editor's paint composited over it, and the painted
    mask: the exact image is used, not the editor's (possibly lossy) copy of it."""
    colour, cover = painted_layers(editor, tuple(image.shape[1:]))
    painted = colour + image * (1 - cover)  # colour is already weighted by its coverage
    return painted.clamp(0, 1), cover > 0


def heat_map(values: np.ndarray) -> Image.Image:
    """A gray-scale picture of a non-negative map (black 0, white its maximum)."""
    top = float(values.max()) if values.size else 0.0
    scaled = values / top if top > 0 else np.zeros_like(values)
    return Image.fromarray(np.rint(scaled * 255).astype(np.uint8))


#: Grey of the pixels a redraw could reach but did not change: 8-bit 180, above any dimmed
#: pixel (at most 115).
REACHABLE_GREY = 180 / 255


def pixels_changed(before: Tensor, after: Tensor) -> Tensor:
    """``(H, W)``: where the 8-bit pictures (as the page shows them) of two images differ."""
    return torch.from_numpy((np.asarray(to_pil(before)) != np.asarray(to_pil(after))).any(2))


def region_picture(image: Tensor, changed: Tensor, region: Tensor) -> Tensor:
    """``changed`` pixels in white, the rest of ``region`` (what the change could reach) in
    light grey, over ``image`` dimmed to at most 45 % (so the three never mix up)."""
    grey = torch.where(region[None], torch.full_like(image, REACHABLE_GREY), 0.45 * image)
    return torch.where(changed[None], torch.ones_like(image), grey)
