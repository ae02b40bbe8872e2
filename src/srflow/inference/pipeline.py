"""Super-resolve images with a trained model: padding, sample batching, tiling, seeds.

Any family's model (:class:`~srflow.models.contract.FlowSR`) samples through its sampling
twin (:meth:`~srflow.models.contract.FlowSR.sampling_twin`, chosen here): the conditioning is
prepared once per image (once per tile when tiled) for all samples and temperatures, and the
samples of all temperatures decode as one stream of equal batches
(:func:`srflow.models.sampling.decode_stream`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import torch
from PIL import Image
from torch import Tensor, nn

from srflow.checkpoints import describe_model, load_model
from srflow.data.image_io import LoadedImage, image_from_pil, image_to_pil, read_image
from srflow.data.resize import imresize
from srflow.data.transforms import pad_to_multiple
from srflow.divergence import count_diverged, warn_diverged
from srflow.inference.repair import OutputCheck, RepairFn
from srflow.inference.tiling import decode_tiled
from srflow.latent.code import LatentCode, model_fingerprint
from srflow.models.contract import FlowSR
from srflow.models.sampling import decode_stream, draw_latents
from srflow.models.temperature import Temperature

logger = logging.getLogger(__name__)
ProgressFn = Callable[[float], None]
ImageInput = Image.Image | str | os.PathLike[str]


#: Smallest LR tile side: with the default 16-pixel context, each window then decodes at most
#: 9x its core (``((tile + 2 * overlap) / tile) ** 2``); smaller tiles are only slower.
MIN_TILE = 16


ModuleT = TypeVar("ModuleT", bound=nn.Module)

#: Samples decoded together on the CPU by default (see :meth:`SuperResolver.default_batch_size`).
CPU_DECODE_BATCH = 4


def inference_layout(model: ModuleT, device: torch.device) -> ModuleT:
    """``model`` with its convolution weights in the fastest memory layout for ``device``:
    channels-last on the CPU (oneDNN's own layout: sampling measured about 1.2x faster,
    outputs unchanged: ``benchmarks/RESULTS.md``), as it is elsewhere."""
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    return model


def check_tile(tile: int | None) -> None:
    """``ValueError`` (the message starts with ``tile``) for a tile below :data:`MIN_TILE`."""
    if tile is not None and tile < MIN_TILE:
        raise ValueError(f"tile must be at least {MIN_TILE} LR pixels (got {tile}; smaller "
                         "tiles save no memory and are many times slower)")  # fmt: skip


class InputTooSmallError(ValueError):
    """The input image is smaller than the model can process."""


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; a named device must be available.

    Raises:
        ValueError: for an unknown or unavailable device (one line saying which).
    """
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps and mps.is_available())
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r} (use cpu, cuda, cuda:N, mps or auto)") from None
    if device.type == "cuda" and device.index is not None:
        usable = device.index < torch.cuda.device_count()
    else:
        usable = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": mps_ok}.get(
            device.type, False
        )
    if not usable:
        raise ValueError(f"device {name!r} is not available on this machine")
    return device


class SuperResolver:
    """A model ready for inference on one device.

    Args:
        model: a trained flow of any family.
        device: where to run (``None``: the model's device).
        half: run in float16 (GPU only).

    Example:
        >>> from srflow.families import build, load_preset
        >>> sr = SuperResolver(build(load_preset("tiny")))
        >>> sr.super_resolve(torch.rand(3, 10, 12), temperature=0.5, samples=2, seed=0).shape
        torch.Size([2, 3, 40, 48])
    """

    def __init__(
        self, model: FlowSR, device: torch.device | str | None = None, half: bool = False
    ) -> None:
        if not isinstance(model, FlowSR):
            raise ValueError(f"{type(model).__name__}: not a super-resolution flow")
        self.device = (
            torch.device(device) if device is not None else next(model.parameters()).device
        )
        if half and self.device.type == "cpu":
            raise ValueError("--half needs a GPU (float16 on the CPU is slow and unsupported)")
        self.dtype = torch.float16 if half else torch.float32
        self.model = inference_layout(model.eval().to(self.device, self.dtype), self.device)
        #: what samples: the model's fast sampling twin (the same weights)
        self.sampler = self.model.sampling_twin()

    @classmethod
    def from_path(
        cls, path: str | Path, device: str = "auto", half: bool = False
    ) -> SuperResolver:
        """Load our ``.safetensors`` checkpoint or an original ``.pth``."""
        where = pick_device(device)  # an ONNX folder picks its execution providers from it
        return cls(load_model(path, device=where), where, half)

    @property
    def scale(self) -> int:
        """The super-resolution factor."""
        return self.model.config.scale

    @property
    def description(self) -> str:
        """Which model this is, e.g. ``SRFlow-DA-R 4x (published SRFlowDA-R_4X)``."""
        return describe_model(self.model)

    def __repr__(self) -> str:
        return f"SuperResolver({self.description}, device={self.device}, dtype={self.dtype})"

    def default_batch_size(self, samples: int) -> int:
        """Samples decoded together when not given: all of them on a GPU; on the CPU at most
        :data:`CPU_DECODE_BATCH` (faster per sample there, and less memory:
        ``benchmarks/RESULTS.md``)."""
        return samples if self.device.type != "cpu" else min(samples, CPU_DECODE_BATCH)

    @property
    def min_lr_size(self) -> int:
        """Smallest LR side the model accepts (before padding)."""
        return max(2, self.model.config.size_multiple_lr)

    def super_resolve(
        self,
        image: Tensor | ImageInput,
        temperature: Temperature = 0.8,
        samples: int = 1,
        seed: int | None = None,
        *,
        generator: torch.Generator | None = None,
        tile: int | None = None,
        tile_overlap: int = 16,
        batch_size: int | None = None,
        progress: ProgressFn | None = None,
        noise_level: float | None = None,
        repair: bool = False,
    ) -> Tensor | list[Image.Image]:
        """Draw ``samples`` super-resolutions of one image.

        Args:
            image: float RGB tensor ``(3, h, w)`` or ``(1, 3, h, w)`` in ``[0, 1]``, a Pillow
                image or an image file (grayscale comes back grayscale, alpha is upscaled with
                bicubic and reattached, the EXIF orientation is applied).
            temperature: latent standard deviation (one value, or one per latent tensor).
            samples: number of samples.
            seed: seed of a CPU generator (same seed, same output); ignored if ``generator``.
            generator: random source for the latents (default: seeded with ``seed`` or 0).
            tile: LR tile size for bounded memory (``None``: whole image at once).
            tile_overlap: LR pixels of context around each tile.
            batch_size: samples decoded together (default: :meth:`default_batch_size`):
                fewer is less memory, the same latents; the outputs can differ by float
                rounding, as batched convolutions round differently (measured: one 8-bit
                level in about 1e-5 of the pixels).
            progress: called with the number of samples (a fraction when tiled) just finished.
            noise_level: the noise level to condition on (a model with
                :attr:`~srflow.models.contract.Capabilities.noise_level`, NCSR: a constant
                noise map; ``None``: the model's default, NCSR's zero map).
            repair: redraw, at lower temperatures, where an output fails the LR check
                (untiled, seeded calls; :mod:`srflow.inference.repair`). Outputs that still
                fail, or fail without it, issue an
                :class:`~srflow.divergence.InconsistentOutputWarning`.

        Returns:
            For a tensor, ``(samples, 3, scale*h, scale*w)`` float in ``[0, 1]`` on the input's
            device; otherwise a list of ``samples`` Pillow images.

        Raises:
            InputTooSmallError: if a side is below :attr:`min_lr_size`.
            ImageReadError: if a file cannot be read.
        """
        options = dict(tile=tile, tile_overlap=tile_overlap, batch_size=batch_size,
                       progress=progress, generator=generator, noise_level=noise_level,
                       repair=repair)  # fmt: skip
        if isinstance(image, Tensor):
            rgb = image[0] if image.dim() == 4 and image.shape[0] == 1 else image
            if rgb.dim() != 3 or rgb.shape[0] != 3:
                raise ValueError(f"expected a (3, h, w) or (1, 3, h, w) image, got {image.shape}")
            out = next(self.sample_temperatures(rgb, [temperature], samples, seed, **options))
            return out.to(image.device)
        loaded = image_from_pil(image) if isinstance(image, Image.Image) else read_image(image)
        srs = next(self.sample_temperatures(loaded.rgb, [temperature], samples, seed, **options))
        alpha = self.upscale_alpha(loaded)
        return [
            image_to_pil(sr, alpha, bit_depth=loaded.bit_depth, grayscale=loaded.was_grayscale)
            for sr in srs
        ]

    def upscale_alpha(self, loaded: LoadedImage) -> Tensor | None:
        """The alpha channel upscaled with bicubic to the SR size, ``(1, sH, sW)`` in [0, 1]."""
        if loaded.alpha is None:
            return None
        alpha = imresize(loaded.alpha.unsqueeze(0).double(), scale=self.scale)[0]
        return alpha.float().clamp(0, 1)

    @torch.inference_mode()
    def sample_temperatures(
        self,
        rgb: Tensor,
        temperatures: Sequence[Temperature],
        samples: int | Sequence[int] = 1,
        seed: int | None = None,
        *,
        generator: torch.Generator | None = None,
        tile: int | None = None,
        tile_overlap: int = 16,
        batch_size: int | None = None,
        progress: ProgressFn | None = None,
        noise_level: float | None = None,
        repair: bool = False,
        on_repair: RepairFn | None = None,
    ) -> Iterator[Tensor]:
        """Yield ``(samples, 3, scale*h, scale*w)`` CPU float tensors, one per temperature
        (``samples`` may give one count per temperature).

        Untiled, the conditioning is computed once for all temperatures. Each temperature
        restarts from ``seed`` (so one seed gives the same latent pattern at every
        temperature), unless a ``generator`` is given. Every output is checked against its LR
        (:mod:`srflow.inference.repair`); with ``repair`` (untiled, seeded runs) the failing
        ones are redrawn where they fail, and ``on_repair`` hears of each. Other options as
        in :meth:`super_resolve`.
        """
        h, w = rgb.shape[1:]
        if min(h, w) < self.min_lr_size:
            raise InputTooSmallError(
                f"image is {w}x{h}; the model needs at least {self.min_lr_size}x{self.min_lr_size}"
            )
        counts = [samples] * len(temperatures) if isinstance(samples, int) else list(samples)
        if len(counts) != len(temperatures) or min(counts, default=1) < 1 or tile_overlap < 0:
            raise ValueError("samples must be at least 1 per temperature, tile_overlap at least 0")
        check_tile(tile)
        self.model.check_noise_level(noise_level)
        lr = self._pad(rgb.unsqueeze(0).to(self.device, self.dtype))
        tiled = tile is not None and (lr.shape[2] > tile or lr.shape[3] > tile)
        if repair and (tiled or generator is not None):
            raise ValueError("repair redraws the latents of a seeded, untiled run: drop the "
                             "tile (or the generator), or the repair")  # fmt: skip
        check = OutputCheck(self, rgb.cpu(), seed, noise_level, repair, on_repair)
        shapes = self.model.latent_shapes(lr)
        gens = [
            generator or torch.Generator().manual_seed(seed if seed is not None else 0)
            for _ in temperatures
        ]  # fmt: skip
        plan = [
            (temperature, n, max(1, batch_size or self.default_batch_size(n)), gen)
            for temperature, n, gen in zip(temperatures, counts, gens, strict=True)
        ]  # fmt: skip
        if tiled:
            # tile by tile, each tile's conditioning prepared once for every temperature
            outs = self._sample_tiled(lr, shapes, plan, (h, w), (tile, tile_overlap), progress,
                                      noise_level)  # fmt: skip
            for index, ((out, diverged), (temperature, *_)) in enumerate(zip(outs, plan,
                                                                               strict=True)):
                if any(diverged):
                    warn_diverged(tuple(diverged), out[0].numel(), temperature)
                yield check.finish(index, temperature, out)
            return
        # prepared once: every batch and temperature reuses the conditioning-only terms (kept
        # only when there is more than one batch); the temperatures' samples decode as one
        # stream of equal batches
        batch = max(1, batch_size or self.default_batch_size(sum(counts)))
        conditioning = self.sampler.prepare(lr, sum(counts) > batch, noise_level=noise_level)
        diverged: list[list[int]] = [[] for _ in plan]

        def seen(index: int, images: Tensor, count: int) -> None:
            diverged[index] += count_diverged(images)
            if progress is not None:
                progress(count)

        def decode(latents: list[Tensor]) -> Tensor:
            return self.sampler.decode(conditioning, latents, logdet=False)[0]

        outs = decode_stream(
            counts, batch,
            lambda index, count: self._draw(shapes, count, plan[index][0], plan[index][3]),
            decode, (h * self.scale, w * self.scale), seen,
        )  # fmt: skip
        for index, out in enumerate(outs):
            if any(diverged[index]):
                warn_diverged(tuple(diverged[index]), out[0].numel(), plan[index][0])
            yield check.finish(index, plan[index][0], out)

    def sample_codes(
        self, rgb: Tensor, temperature: Temperature = 0.8, samples: int = 1,
        seed: int | None = None, noise_level: float | None = None,
    ) -> list[LatentCode]:  # fmt: skip
        """The latent codes of the samples :meth:`sample_temperatures` draws for one
        temperature, seed and noise level: ``decode_code(model, code)`` gives each sample
        back (to float rounding), ready for the latent tools (:mod:`srflow.latent`), e.g.
        masked resampling.

        Only random numbers are drawn here (nothing is decoded); the LR is padded as for
        super-resolution.
        """
        h, w = rgb.shape[1:]
        if min(h, w) < self.min_lr_size or samples < 1:
            raise ValueError(f"need at least one sample of an image of at least "
                             f"{self.min_lr_size}x{self.min_lr_size}")  # fmt: skip
        self.model.check_noise_level(noise_level)
        lr = self._pad(rgb.unsqueeze(0).to(self.device, self.dtype))
        gen = torch.Generator().manual_seed(seed if seed is not None else 0)
        latents = self._draw(self.model.latent_shapes(lr), samples, temperature, gen)
        size = (h * self.scale, w * self.scale)
        fingerprint = model_fingerprint(self.model)
        return [
            LatentCode([z[j : j + 1] for z in latents], lr, size, self.scale, fingerprint,
                       noise_level)  # fmt: skip
            for j in range(samples)
        ]

    def _draw(
        self, shapes: list[tuple[int, ...]], count: int, temperature: Temperature,
        generator: torch.Generator,
    ) -> list[Tensor]:  # fmt: skip
        """Latents of ``count`` samples, drawn sample by sample (so the result does not depend
        on the batch size)."""
        return draw_latents(self.model, shapes, count, temperature, generator, dtype=self.dtype,
                            device=self.device)  # fmt: skip

    def _pad(self, lr: Tensor) -> Tensor:
        padded = pad_to_multiple(lr, self.model.config.size_multiple_lr)
        if padded.shape != lr.shape:
            logger.info(
                "padding the %dx%d input to %dx%d (mirrored); output cropped back",
                lr.shape[3], lr.shape[2], padded.shape[3], padded.shape[2],
            )  # fmt: skip
        return padded

    def _sample_tiled(
        self, lr: Tensor, shapes: list[tuple[int, ...]],
        plan: list[tuple[Temperature, int, int, torch.Generator]], hw: tuple[int, int],
        tiling: tuple[int, int], progress: ProgressFn | None, noise_level: float | None,
    ) -> list[tuple[Tensor, list[int]]]:  # fmt: skip
        """Every temperature's samples (and diverged values per sample), decoded tile by
        tile into outputs of the unpadded HR size ``hw * scale`` (padding is cropped).
        Latents are drawn as untiled sampling draws them (the same images)."""
        s = self.scale
        outs = [torch.empty(n, 3, hw[0] * s, hw[1] * s) for _, n, _, _ in plan]
        groups, targets = [], []  # one latent batch and (temperature index, output rows) each
        for index, (temperature, n, per_batch, gen) in enumerate(plan):
            for start in range(0, n, per_batch):
                count = min(per_batch, n - start)
                groups.append(self._draw(shapes, count, temperature, gen))
                targets.append((index, outs[index][start : start + count]))
        diverged = [[0] * len(target) for _, target in targets]
        area = lr.shape[2] * lr.shape[3]
        for t, cores in decode_tiled(self.sampler, lr, groups, *tiling, noise_level):
            y0, x0 = t.core_y[0] * s, t.core_x[0] * s
            y1, x1 = min(t.core_y[1] * s, hw[0] * s), min(t.core_x[1] * s, hw[1] * s)
            for k, ((_, target), core) in enumerate(zip(targets, cores, strict=True)):
                if y1 > y0 and x1 > x0:
                    kept = core[:, :, : y1 - y0, : x1 - x0]
                    counted = zip(diverged[k], count_diverged(kept), strict=True)
                    diverged[k] = [a + b for a, b in counted]
                    target[:, :, y0:y1, x0:x1] = kept.clamp(0, 1)
                if progress is not None:
                    core_area = (t.core_y[1] - t.core_y[0]) * (t.core_x[1] - t.core_x[0])
                    progress(len(target) * core_area / area)
        per_temperature: list[list[int]] = [[] for _ in plan]
        for (index, _), counts in zip(targets, diverged, strict=True):
            per_temperature[index] += counts
        return list(zip(outs, per_temperature, strict=True))
