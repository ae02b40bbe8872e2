"""Round-trip example of docs/rescaling.md: HR -> 8-bit LR -> HR, against bicubic down + up.

Trains the tiny rescaling recipe (``train_hcflow_rescale_tiny``, about a minute on 2 CPU cores)
on scikit-image's three bundled photographs, unless ``--model`` names a rescaling model
(e.g. the published ``Rescaling_DF2K_X4_HCFlow.pth``), then for each photo prints PSNR / SSIM
(RGB, border = scale) of the round trip through an 8-bit PNG and of bicubic down + bicubic up,
and writes ``docs/rescaling/round_trip.png``: 128-pixel crops of HR | the 8-bit LR (shown
enlarged, nearest neighbour) | round trip | bicubic down + up. Usage::

    python scripts/rescaling_example.py
    python scripts/rescaling_example.py --model Rescaling_DF2K_X4_HCFlow.pth -t 1.0
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import skimage.data
import torch
from PIL import Image

from srflow.data.resize import imresize
from srflow.files import atomic_file
from srflow.inference.rescale import Rescaler
from srflow.metrics.psnr_ssim import psnr, ssim
from srflow.train.config import load_run_config
from srflow.train.loop import train

PHOTOS = ("astronaut", "chelsea", "coffee")
CROP = 128


def _uint8(chw: torch.Tensor) -> np.ndarray:
    return torch.round(chw.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a rescaling model (default: train the tiny recipe)")
    parser.add_argument("-t", "--temperature", type=float, default=None,
                        help="default: the recipe's (0) or 1.0 with --model")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("docs/rescaling/round_trip.png"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        for name in PHOTOS:
            Image.fromarray(getattr(skimage.data, name)()).save(photos / f"{name}.png")
        model, temperature = args.model, args.temperature
        if model is None:
            cfg = load_run_config("train_hcflow_rescale_tiny", [f"data.train_hr={photos}"])
            result = train(cfg, Path(tmp) / "run", progress=False)
            model = str(result.model_path)
            if temperature is None:
                temperature = cfg.train.losses.sample_temperature
        rescaler = Rescaler.from_path(model, "auto")
        temperature = 1.0 if temperature is None else temperature
        rows, strips = [], []
        print("| photo | round trip PSNR / SSIM | bicubic down + up PSNR / SSIM |")
        print("|---|---|---|")
        for name in PHOTOS:
            hr = getattr(skimage.data, name)()
            h, w = (s - s % rescaler.scale for s in hr.shape[:2])
            hr = hr[:h, :w]
            lr = rescaler.downscale(torch.from_numpy(hr).permute(2, 0, 1).float() / 255)
            back = _uint8(rescaler.upscale(lr, temperature, seed=0)[0])
            bicubic = imresize(imresize(hr, scale=1 / rescaler.scale), scale=rescaler.scale)
            s = rescaler.scale
            ours = (psnr(back, hr, crop_border=s), ssim(back, hr, crop_border=s))
            base = (psnr(bicubic, hr, crop_border=s), ssim(bicubic, hr, crop_border=s))
            rows.append((ours, base))
            print(f"| {name} | {ours[0]:.2f} / {ours[1]:.4f} | {base[0]:.2f} / {base[1]:.4f} |")
            y, x = (h - CROP) // 2 // s * s, (w - CROP) // 2 // s * s
            shown_lr = np.repeat(np.repeat(_uint8(lr), s, 0), s, 1)
            crops = [img[y : y + CROP, x : x + CROP] for img in (hr, shown_lr, back, bicubic)]
            strips.append(np.concatenate(crops, axis=1))
        mean = np.mean([[o[0], o[1], b[0], b[1]] for o, b in rows], axis=0)
        print(f"| mean | {mean[0]:.2f} / {mean[1]:.4f} | {mean[2]:.2f} / {mean[3]:.4f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(args.out) as handle:
        Image.fromarray(np.concatenate(strips, axis=0)).save(handle, format="PNG")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
