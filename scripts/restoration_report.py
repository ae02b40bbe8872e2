"""Restoration report (SRFlow paper, Sec. 4.5 and Fig. 6): ``docs/restoration.md``.

Takes the first ``--count`` held-out photos (``data/photos/eval/hr``, made by
``scripts/prepare_photos.py``), center crops of ``--crop`` pixels, degrades each with Gaussian
noise (sigma 10 and 20 on the 0-255 scale, seeded) and JPEG (quality 30), and measures against
the clean crop (PSNR and SSIM on RGB, ``srflow.metrics``):

* the degraded input itself;
* "downscale then super-resolve": bicubic downscale of the degraded image, then SR at
  temperature 0 and 0.8;
* our restoration (``srflow.latent.restore``: encode with the image's own LR, spatial then
  local latent normalization, decode) at each ``--restore-temperatures`` value.

LR-PSNR is the consistency of an output with the degraded image's LR (``inf`` for the input).
It writes the Markdown table and a few example strips (clean | degraded | SR T=0 | restored,
128-pixel center crops) into ``docs/restoration/``. Usage::

    python scripts/restoration_report.py                        # embedded model, 8 photos
    python scripts/restoration_report.py --model run.safetensors --count 2 --crop 128
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srflow.checkpoints import load_model
from srflow.data.image_io import list_images, read_image
from srflow.files import atomic_file
from srflow.inference.api import default_model_path
from srflow.inference.pipeline import pick_device
from srflow.latent import decode_code, downscale, restore, sample_code
from srflow.metrics.consistency import lr_psnr
from srflow.metrics.psnr_ssim import psnr, ssim
from srflow.models.srflow import SRFlow

ROOT = Path(__file__).resolve().parents[1]
DEGRADATIONS = ("noise σ=10", "noise σ=20", "JPEG q=30")
EXAMPLE_SIDE = 128


def degrade(clean: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """A degraded uint8 copy of ``clean`` (HWC uint8)."""
    if kind.startswith("noise"):
        sigma = float(kind.split("=")[1])
        noise = np.random.default_rng(seed).normal(0.0, sigma, clean.shape)
        return np.clip(np.round(clean + noise), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(clean).save(buffer, format="JPEG", quality=int(kind.split("=")[1]))
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def to_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """HWC uint8 -> (1, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float().div(255).to(device)


def to_u8(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) in [0, 1] -> HWC uint8 (rounded)."""
    image = image[0] if image.dim() == 4 else image
    return (image.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)


def center_crop(image: np.ndarray, side: int) -> np.ndarray:
    """Center crop of at most ``side`` pixels, both sides multiples of 8."""
    h, w = min(image.shape[0], side) // 8 * 8, min(image.shape[1], side) // 8 * 8
    top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    return image[top : top + h, left : left + w]


@torch.no_grad()
def outputs(model: SRFlow, degraded: np.ndarray, temps: list[float], seed: int,
            device: torch.device) -> dict[str, np.ndarray]:  # fmt: skip
    """Every compared image for one degraded input."""
    x = to_tensor(degraded, device)
    lr = downscale(x, model.config.scale)
    result = {"degraded input": degraded}
    for t in (0.0, 0.8):
        code = sample_code(model, lr, t, torch.Generator().manual_seed(seed))
        result[f"downscale + SR, T={t:g}"] = to_u8(decode_code(model, code))
    for t in temps:
        restored = restore(model, x, temperature=t, generator=torch.Generator().manual_seed(seed))
        result[f"restoration (ours), T={t:g}"] = to_u8(restored)
    return result


def strip(images: list[np.ndarray]) -> Image.Image:
    """Side-by-side center crops of ``EXAMPLE_SIDE`` pixels."""
    crops = [center_crop(im, EXAMPLE_SIDE) for im in images]
    return Image.fromarray(np.concatenate(crops, axis=1))


def write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically."""
    with atomic_file(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def table(scores: dict[tuple[str, str], list[tuple[float, float, float]]]) -> list[str]:
    """Markdown rows: mean PSNR, SSIM and LR-PSNR per degradation and method."""
    lines = ["| degradation | method | PSNR (dB) | SSIM | LR-PSNR (dB) |",
             "|---|---|---:|---:|---:|"]  # fmt: skip
    for (kind, method), values in scores.items():
        p, s, c = (float(np.mean(v)) for v in zip(*values, strict=True))
        consistency = "—" if method == "degraded input" else f"{c:.2f}"
        lines.append(f"| {kind} | {method} | {p:.2f} | {s:.4f} | {consistency} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model file (default: the embedded model)")
    parser.add_argument("--photos", type=Path, default=ROOT / "data/photos/eval/hr")
    parser.add_argument("--count", type=int, default=8, help="number of photos (first N)")
    parser.add_argument("--crop", type=int, default=256, help="center crop side in pixels")
    parser.add_argument("--restore-temperatures", type=float, nargs="+", default=[0.8])
    parser.add_argument("--examples", type=int, default=2, help="photos with example strips")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/restoration.md")
    args = parser.parse_args(argv)

    model_path = args.model or default_model_path()
    if model_path is None or not Path(model_path).is_file():
        print(f"error: no model file ({model_path or 'no embedded model'}); pass --model",
              file=sys.stderr)  # fmt: skip
        return 2
    photos = list_images([args.photos])[: args.count] if args.photos.is_dir() else []
    if not photos:
        print(f"error: {args.photos}: no photos (run scripts/prepare_photos.py)", file=sys.stderr)
        return 2
    device = pick_device(args.device)
    model = load_model(model_path, device=device)
    digest = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()[:12]
    image_dir = args.out.parent / args.out.stem
    image_dir.mkdir(parents=True, exist_ok=True)
    scores: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    examples: list[str] = []
    start = time.time()
    for index, path in enumerate(photos):
        clean = center_crop(to_u8(read_image(path).rgb), args.crop)
        for k, kind in enumerate(DEGRADATIONS):
            degraded = degrade(clean, kind, args.seed + 1000 * index + k)
            lr = to_u8(downscale(to_tensor(degraded, torch.device("cpu")), model.config.scale))
            results = outputs(model, degraded, args.restore_temperatures, args.seed, device)
            for method, image in results.items():
                consistency = lr_psnr(image, lr, model.config.scale)
                scores.setdefault((kind, method), []).append(
                    (psnr(image, clean), ssim(image, clean), consistency)
                )
            if index < args.examples:
                name = f"{Path(path).stem}_{kind.split()[0].lower()}{kind.split('=')[1]}.png"
                methods = list(results)
                picked = [clean, degraded, results[methods[1]], results[methods[-1]]]
                strip(picked).save(image_dir / name, optimize=True)
                examples.append(f"![{kind}, {Path(path).stem}]({image_dir.name}/{name})  \n"
                                f"*{kind}, {Path(path).stem}: clean | degraded | "
                                f"{methods[1]} | {methods[-1]}*")  # fmt: skip
        print(f"{index + 1}/{len(photos)} {Path(path).name} ({time.time() - start:.0f} s)")
    command = "python scripts/restoration_report.py " + " ".join(argv or sys.argv[1:])
    text = "\n".join([
        "# Restoration of noisy and JPEG-compressed photos",
        "",
        "SRFlow's posterior used for restoration (paper Sec. 4.5, Fig. 6): the degraded image is",
        "encoded with its own bicubic LR, its latents are normalized (spatial, then local) and",
        "decoded. See [latent-tools.md](latent-tools.md) for the method.",
        "",
        f"Model: `{Path(model_path).name}` (sha256 `{digest}…`). Photos: the first "
        f"{len(photos)} of `data/photos/eval/hr`, center crops of {args.crop} px. Noise is "
        "Gaussian on the 0-255 scale (seeded), JPEG via Pillow. Means over the photos; PSNR "
        "and SSIM on RGB against the clean crop; LR-PSNR against the degraded image's LR.",
        "",
        *table(scores),
        "",
        "Regenerate (one command; writes this page and `docs/restoration/`):",
        "",
        f"    {command.strip()}",
        "",
        "## Examples",
        "",
        *[line for example in examples for line in (example, "")],
    ])  # fmt: skip
    write_text(args.out, text)
    print(f"wrote {args.out} and {len(examples)} example(s) in {image_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
