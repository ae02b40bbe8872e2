"""Invertible image rescaling with HCFlow: an HR image -> an 8-bit LR -> the HR back.

:meth:`Rescaler.downscale` runs the flow's HR -> LR trunk and quantizes its LR to 8 bits
(what a user stores or sends); :meth:`Rescaler.upscale` decodes an HR from that LR with the
high-frequency latents drawn at a temperature (1.0 for the published rescaling model, as its
authors test it). Sides that are not multiples of the scale are padded (replicate) before
downscaling; the LR PNG written by :func:`write_lr_png` records the original HR size in a
text chunk (``srflow:hr-size``), and upscaling crops back to it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from PIL import Image, PngImagePlugin
from torch import Tensor

from srflow.checkpoints import describe_model, load_model
from srflow.data.image_io import ImageReadError, LoadedImage, read_image
from srflow.data.resize import imresize
from srflow.data.transforms import pad_to_multiple, quantize_8bit
from srflow.files import atomic_file
from srflow.inference.pipeline import SuperResolver, pick_device
from srflow.models.contract import CapabilityError, FlowSR

logger = logging.getLogger(__name__)
HR_SIZE_KEY = "srflow:hr-size"
PUBLISHED_TEMPERATURE = 1.0


class Rescaler:
    """A model with an HR -> LR flow, ready to downscale and upscale images on one device.

    Args:
        model: a model that can downscale (:attr:`~srflow.models.contract.Capabilities.downscale`:
            HCFlow's published rescaling model, or any HCFlow: an SR model's trunk also maps HR
            to LR, but was trained to reproduce bicubic, not to be undone).
        device: where to run (``None``: the model's device).
        half: float16 (GPU only).

    Raises:
        CapabilityError: the model cannot downscale (SRFlow), one line naming it.
        ValueError: ``half`` on the CPU.
    """

    def __init__(
        self, model: FlowSR, device: torch.device | str | None = None, half: bool = False
    ) -> None:
        try:
            model.require("downscale", "image rescaling")
        except CapabilityError as exc:
            raise CapabilityError(f"{describe_model(model)}: {exc}") from None
        self.resolver = SuperResolver(model, device, half)
        self.model = self.resolver.model

    @classmethod
    def from_path(cls, path: str | Path, device: str = "auto", half: bool = False) -> Rescaler:
        """Load our ``.safetensors`` or a published ``.pth`` (``Rescaling_DF2K_X4_HCFlow.pth``)."""
        where = pick_device(device)  # an ONNX folder picks its execution providers from it
        return cls(load_model(path, device=where), where, half)

    @property
    def scale(self) -> int:
        """The rescaling factor."""
        return self.resolver.scale

    @property
    def description(self) -> str:
        """Which model this is, e.g. ``HCFlow (rescaling) 4x (published ...)``."""
        return self.resolver.description

    @torch.inference_mode()
    def downscale(self, hr: Tensor) -> Tensor:
        """``(3, H, W)`` in ``[0, 1]`` -> the flow's LR ``(3, ceil(H/s), ceil(W/s))`` rounded
        to multiples of 1/255 (exactly what an 8-bit PNG of it holds)."""
        if hr.dim() != 3 or hr.shape[0] != 3:
            raise ValueError(f"expected a (3, H, W) image, got {tuple(hr.shape)}")
        x = pad_to_multiple(hr.unsqueeze(0), self.scale)
        x = x.to(self.resolver.device, self.resolver.dtype)
        return quantize_8bit(self.model.downscale(x).float())[0].cpu()

    def downscale_alpha(self, alpha: Tensor) -> Tensor:
        """An alpha ``(1, H, W)`` to the LR size by bicubic (alpha is not part of the flow)."""
        padded = pad_to_multiple(alpha.unsqueeze(0).double(), self.scale)
        return imresize(padded, scale=1 / self.scale)[0].float().clamp(0, 1)

    def upscale(
        self, lr: Tensor, temperature: float = PUBLISHED_TEMPERATURE, samples: int = 1,
        seed: int | None = None, *, hr_size: tuple[int, int] | None = None,
        generator: torch.Generator | None = None, tile: int | None = None,
        tile_overlap: int = 16,
    ) -> Tensor:  # fmt: skip
        """``samples`` HR reconstructions ``(samples, 3, H, W)`` of an LR ``(3, h, w)``.

        ``hr_size``: ``(H, W)`` of the image that was downscaled (the output is cropped to
        it; ``None``: ``s * h`` by ``s * w``). The other options as in
        :meth:`SuperResolver.super_resolve`.

        Raises:
            ValueError: if ``hr_size`` does not downscale to this LR's size.
        """
        if hr_size is not None and not fits_lr(hr_size, tuple(lr.shape[-2:]), self.scale):
            raise ValueError(
                f"HR size {hr_size[1]}x{hr_size[0]} does not fit a {lr.shape[-1]}x{lr.shape[-2]}"
                f" LR at {self.scale}x"
            )
        out = next(self.resolver.sample_temperatures(
            lr, [temperature], samples, seed, generator=generator, tile=tile,
            tile_overlap=tile_overlap,
        ))  # fmt: skip
        return out if hr_size is None else _crop_to(out, hr_size)

    def upscale_alpha(self, alpha: Tensor, hr_size: tuple[int, int] | None) -> Tensor:
        """An LR alpha ``(1, h, w)`` to the HR size by bicubic."""
        up = imresize(alpha.unsqueeze(0).double(), scale=self.scale)[0].float().clamp(0, 1)
        return up if hr_size is None else _crop_to(up, hr_size)


def fits_lr(hr_size: tuple[int, int], lr_size: tuple[int, int], scale: int) -> bool:
    """Whether an HR of ``hr_size`` ``(H, W)`` downscales (padded) to ``lr_size``."""
    return all(-(-hr // scale) == lr for hr, lr in zip(hr_size, lr_size, strict=True))


def _crop_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    return x[..., : size[0], : size[1]]


def write_lr_png(
    path: str | Path, lr: Tensor, hr_size: tuple[int, int], alpha: Tensor | None = None
) -> None:
    """Write the LR as an 8-bit RGB(A) PNG (atomically) with the HR size in a text chunk."""
    planes = lr if alpha is None else torch.cat([lr, alpha.to(lr.dtype)])
    array = torch.round(planes.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()
    info = PngImagePlugin.PngInfo()
    info.add_text(HR_SIZE_KEY, f"{hr_size[1]}x{hr_size[0]}")
    with atomic_file(path) as handle:
        Image.fromarray(array).save(handle, format="PNG", pnginfo=info)


def read_lr_image(path: str | Path) -> tuple[LoadedImage, tuple[int, int] | None]:
    """An LR image and the ``(H, W)`` recorded by :func:`write_lr_png` (``None`` if absent).

    Raises:
        ImageReadError: if the file cannot be read or its recorded size is malformed.
    """
    loaded = read_image(path)
    with Image.open(path) as img:
        text = getattr(img, "text", {}).get(HR_SIZE_KEY)
    if text is None:
        return loaded, None
    try:
        width, height = (int(v) for v in text.split("x"))
    except ValueError:
        raise ImageReadError(f"{path}: malformed {HR_SIZE_KEY} text chunk {text!r}") from None
    return loaded, (height, width)
