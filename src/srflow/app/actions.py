"""What each button does, through the library's API only (no gradio here).

Every function takes the tab's :class:`~srflow.app.session.Session` and the model's
:class:`~srflow.inference.pipeline.SuperResolver`, updates the session and returns tensors
and text for the page; problems the user can fix raise :class:`~srflow.app.session.AppError`.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from srflow.app.images import sample_file_name, to_pil
from srflow.app.session import AppError, Explored, Session
from srflow.data.image_io import LoadedImage
from srflow.divergence import DivergenceWarning
from srflow.inference.pipeline import SuperResolver
from srflow.latent import (
    affected_region,
    content_transfer,
    decode_code,
    latent_masks,
    resample_code,
    restore,
    style_transfer,
)
from srflow.latent.code import LatentCode
from srflow.metrics.consistency import lr_psnr_of_sample
from srflow.metrics.diversity import pixel_std_diversity, pixel_std_map
from srflow.metrics.lr_check import lr_consistency

Report = Callable[[float, str], None]
MAX_SAMPLES = 16


@dataclass(frozen=True)
class Samples:
    """The Sample panel's results.

    Attributes:
        images: ``(N, 3, H, W)`` in ``[0, 1]``.
        lr_psnr: LR-PSNR (dB) of each sample.
        std_map: per-pixel std across the samples ``(H, W)`` (0-255 scale).
        diversity: its mean (SRFlow's pixel-std diversity).
        note: divergence warnings, if any.
        consistent: whether each sample passes the LR check (:mod:`srflow.metrics.lr_check`).
    """

    images: Tensor
    lr_psnr: list[float]
    std_map: object
    diversity: float
    note: str
    consistent: list[bool]


def _quiet_divergence(work: Callable[[], Tensor]) -> tuple[Tensor, str]:
    """Run ``work``; the divergence warnings it issues become one line of text."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DivergenceWarning)
        out = work()
    lines = [str(w.message) for w in caught if issubclass(w.category, DivergenceWarning)]
    return out, "; ".join(dict.fromkeys(lines))


def draw_samples(
    session: Session, resolver: SuperResolver, temperature: float | list[float], count: int,
    seed: int, report: Report, noise_level: float | None = None,
) -> Samples:  # fmt: skip
    """Draw ``count`` samples of the session's image (as ``srflow sr --seed
    [--noise-level]`` draws them)."""
    image = session.need_image()
    if not 1 <= count <= MAX_SAMPLES:
        raise AppError(f"number of samples: 1 to {MAX_SAMPLES}")
    try:
        resolver.model.check_noise_level(noise_level)
    except ValueError as exc:  # CapabilityError is one
        raise AppError(str(exc)) from None
    temps: float | list[float] = temperature
    if isinstance(temperature, list):
        try:
            temps = resolver.model.latent_temperatures(temperature)
        except ValueError as exc:
            raise AppError(f"temperature: {exc}") from None
    progress = session.progress_reporter(report, count, "sampling")
    with session.working():
        images, note = _quiet_divergence(lambda: next(resolver.sample_temperatures(
            image.rgb, [temps], count, seed, batch_size=1, progress=progress,
            noise_level=noise_level)))  # fmt: skip
    session.samples, session.temperature = images, temperature
    session.explored, session.steps = None, 0
    session.codes = resolver.sample_codes(image.rgb, temps, count, seed, noise_level)
    scores = [lr_psnr_of_sample(sr, image.rgb, resolver.scale) for sr in images]
    checks = lr_consistency(images, image.rgb[None], resolver.model.consistency_lr)
    hwc = images.permute(0, 2, 3, 1).numpy()
    return Samples(images, scores, pixel_std_map(hwc), pixel_std_diversity(hwc), note,
                   [c.consistent for c in checks])  # fmt: skip


def write_samples(session: Session, folder: Path) -> list[Path]:
    """Write the gallery as PNG files named as ``srflow sr`` names them, plus a zip of all
    (last in the list)."""
    images = session.need_samples()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, image in enumerate(images):
        path = folder / sample_file_name(session.name, session.temperature, index)
        to_pil(image).save(path)
        paths.append(path)
    bundle = folder / f"{session.name}_sr_samples.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        for path in paths:
            archive.write(path, path.name)
    return [*paths, bundle]


def _decode(session: Session, resolver: SuperResolver, code: LatentCode) -> tuple[Tensor, str]:
    """Decode ``code`` with its LR's prepared conditioning, kept in the session: redrawing a
    region again and again runs the encoder and the conditioning-only terms once."""
    prepared = session.conditioning_for(
        code.lr, lambda lr: resolver.sampler.prepare(lr, noise_level=code.noise_level))
    image, note = _quiet_divergence(lambda: decode_code(resolver.model, code, prepared)[0])
    return image.float().clamp(0, 1).cpu(), note


def start_exploring(session: Session, resolver: SuperResolver, index: int) -> Tensor:
    """Make sample ``index`` the one whose regions are redrawn; returns its image."""
    session.need_samples()
    if not 0 <= index < len(session.codes):
        raise AppError(f"there is no sample s{index:02d}")
    code = session.codes[index]
    image, _ = _decode(session, resolver, code)
    session.explored, session.steps = Explored(index, [code], [image]), 0
    return image


def redraw_region(
    session: Session, resolver: SuperResolver, mask: Tensor, temperature: float, seed: int
) -> tuple[Tensor, Tensor | None, str]:
    """Redraw the latents under ``mask`` ``(H, W)`` at ``temperature``; the latents outside
    stay bit for bit.

    Returns:
        The new image, the pixels that may have changed (``None`` for a model without a local
        receptive field, e.g. HCFlow, where a change can reach the whole image) and a
        divergence note.
    """
    explored = session.explored
    if explored is None:
        raise AppError("choose a sample to explore first")
    code = explored.codes[-1]
    generator = torch.Generator().manual_seed(seed + session.steps)
    new = resample_code(resolver.model, code, temperature, generator, mask.cpu())
    image, note = _decode(session, resolver, new)
    session.steps += 1
    explored.codes.append(new)
    explored.images.append(image)
    if not resolver.model.capabilities.local_receptive_field:
        return image, None, note
    shapes = [tuple(z.shape) for z in code.latents]
    region = affected_region(resolver.model, latent_masks(mask, shapes, code.padded_size))
    return image, region[0, 0, : image.shape[1], : image.shape[2]].cpu(), note


def undo(session: Session) -> Tensor:
    """Go back one redraw; returns the image shown before it."""
    explored = session.explored
    if explored is None or len(explored.codes) < 2:
        raise AppError("nothing to undo")
    explored.codes.pop()
    explored.images.pop()
    return explored.current


def transfer_style(
    session: Session, resolver: SuperResolver, source: LoadedImage, temperature: float, seed: int
) -> Tensor:
    """Super-resolve the session's image with the latents (texture) of ``source``, an HR
    image ``scale`` times its size."""
    target = session.need_image().rgb.to(resolver.device, resolver.dtype)
    generator = torch.Generator().manual_seed(seed)
    try:
        code = style_transfer(resolver.model, source.rgb.to(target), target,
                              temperature=temperature, generator=generator)  # fmt: skip
    except ValueError as exc:
        raise AppError(f"style source: {exc}") from None
    return _decode(session, resolver, code)[0]


#: LR pixels over which the app blends pasted content into the sample's LR.
CONTENT_FEATHER = 1.0


def transfer_content(
    session: Session, resolver: SuperResolver, edited: Tensor, mask: Tensor, temperature: float,
    seed: int,
) -> Tensor:  # fmt: skip
    """Blend content pasted (painted) into the explored sample: encode the edited image with
    the sample's LR feathered into the edit's own across the region's border
    (:func:`~srflow.latent.content.feathered_lr`, one LR pixel: with the sample's LR alone the
    paste would be erased) and normalize its latents locally there."""
    explored = session.explored
    if explored is None:
        raise AppError("choose a sample (Explore a region) to paste into first")
    device, dtype = resolver.device, resolver.dtype
    code = content_transfer(
        resolver.model, explored.current.to(device, dtype), edited.to(device, dtype),
        mask.to(device), lr=session.need_image().rgb.to(device, dtype), temperature=temperature,
        generator=torch.Generator().manual_seed(seed), feather=CONTENT_FEATHER,
    )  # fmt: skip
    return _decode(session, resolver, code)[0]


def restore_image(
    resolver: SuperResolver, degraded: LoadedImage, temperature: float, seed: int
) -> Tensor:
    """Restore a noisy or JPEG-compressed image (its own size; SRFlow paper Sec. 4.5)."""
    rgb = degraded.rgb.to(resolver.device, resolver.dtype)
    generator = torch.Generator().manual_seed(seed)
    out, _ = _quiet_divergence(
        lambda: restore(resolver.model, rgb, temperature=temperature, generator=generator)
    )
    return out[0].float().cpu()
