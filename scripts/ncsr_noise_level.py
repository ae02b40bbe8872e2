"""What the noise level does to NCSR samples on real photos: ``docs/models.md#ncsr-noise-level``.

Trains a small NCSR 4x (preset ``train_ncsr_tiny`` at 64 px patches) on the training photos
(``data/photos/train``, made by ``scripts/prepare_photos.py``), resumably in ``--run``, then
super-resolves center crops of the held-out photos (``data/photos/eval/hr``, downscaled with
our MATLAB bicubic) at one temperature for each noise level and prints a Markdown table of the
means over the photos: LR-PSNR (each sample against the input LR), pixel-std diversity (0-255,
over the samples of one photo) and NIQE (no reference; lower is more natural). Usage::

    python scripts/ncsr_noise_level.py                    # train (resumes), then measure
    python scripts/ncsr_noise_level.py --steps 3000 --count 8
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from srflow.checkpoints import load_model
from srflow.data.image_io import list_images, read_image
from srflow.inference.pipeline import SuperResolver
from srflow.latent import downscale
from srflow.metrics.consistency import lr_psnr
from srflow.metrics.diversity import pixel_std_diversity
from srflow.metrics.niqe import niqe
from srflow.train.checkpoint import export_model
from srflow.train.config import load_run_config
from srflow.train.loop import train

ROOT = Path(__file__).resolve().parents[1]


def trained_model(photos: Path, run: Path, steps: int) -> Path:
    """Train (or resume) the small NCSR in ``run``; returns its exported model file."""
    sets = [f"data.train_hr={photos / 'train'}", f"train.steps={steps}", "data.patch_size=64",
            "train.batch_size=8", "train.checkpoint_every=100", "train.log_every=100",
            "train.ema_decay=0.999", "model.encoder.features=32", "model.encoder.growth=16",
            "model.flow.hidden_channels=32", "data.cache_max_mb=2048"]  # fmt: skip
    train(load_run_config("train_ncsr_tiny", sets), run, resume=True, progress=False)
    return export_model(run, run / "model.safetensors")


def as_uint8(image: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` in [0, 1] -> HWC uint8."""
    return (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def measure(model_path: Path, hr_paths: list[Path], args: argparse.Namespace) -> list[str]:
    """The table's rows, one per noise level."""
    resolver = SuperResolver(load_model(model_path), device="cpu")
    lrs = []
    for path in hr_paths:
        hr = read_image(path).rgb
        top, left = (hr.shape[1] - args.crop) // 2, (hr.shape[2] - args.crop) // 2
        crop = hr[:, top : top + args.crop, left : left + args.crop]
        lrs.append(downscale(crop[None], 4)[0])
    rows = []
    for level in args.levels:
        scores: dict[str, list[float]] = {"lr_psnr": [], "diversity": [], "niqe": []}
        for lr in lrs:
            samples = next(resolver.sample_temperatures(lr, [args.temperature], args.samples,
                                                        args.seed, noise_level=level))  # fmt: skip
            images = [as_uint8(s) for s in samples]
            scores["lr_psnr"] += [lr_psnr(i, as_uint8(lr), 4) for i in images]
            scores["diversity"].append(pixel_std_diversity(np.stack(images)))
            scores["niqe"] += [niqe(i) for i in images]
        means = {k: float(np.mean(v)) for k, v in scores.items()}
        rows.append(f"| {level:g} | {means['lr_psnr']:.2f} | {means['diversity']:.2f} | "
                    f"{means['niqe']:.2f} |")  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=Path, default=ROOT / "data" / "photos")
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "ncsr_noise_level")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--count", type=int, default=6, help="held-out photos")
    parser.add_argument("--crop", type=int, default=192, help="HR center crop (pixels)")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--temperature", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.01, 0.03, 0.05])
    args = parser.parse_args()
    hr_paths = list_images([args.photos / "eval" / "hr"])[: args.count]
    if not hr_paths:
        sys.exit(f"{args.photos / 'eval' / 'hr'}: no photos; run scripts/prepare_photos.py")
    model_path = trained_model(args.photos, args.run, args.steps)
    sys.stdout.write(f"NCSR (small, {args.steps} steps), {len(hr_paths)} photos, "
                     f"{args.crop}px crops, {args.samples} samples at T={args.temperature}\n\n"
                     "| noise level | LR-PSNR (dB) | diversity (pixel std) | NIQE |\n"
                     "|---|---|---|---|\n")  # fmt: skip
    sys.stdout.write("\n".join(measure(model_path, hr_paths, args)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
