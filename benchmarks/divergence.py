"""How often the inverse flow diverges, with and without the calibrated inverse bounds.

    python benchmarks/divergence.py [--model MODEL] [--photos N]

Inputs: central 96x96 crops of the first ``--photos`` held-out LR photos
(``data/photos/eval/lr_x4``) and five non-photographic or off-domain LRs: uniform noise (the
README's old ``torch.rand`` example), scikit-image's logo, a checkerboard, a downscaled coffee
photo and scanned text. For temperatures 0, 0.8 and 1.0 (seed 0) the table gives the share of
output values that diverged (beyond 10 of mid-grey, NaN included) without bounds and with the
model's bounds, the share of 8-bit pixels the bounds changed, and the LR-PSNR (the 8-bit
output, downscaled with MATLAB bicubic, against the input) without and with bounds: how far
the output is from being a super-resolution of its input.
"""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from skimage import data as skimage_data

from srflow.checkpoints import load_model
from srflow.data.image_io import read_image
from srflow.data.resize import imresize
from srflow.divergence import count_diverged
from srflow.inference.api import default_model_path
from srflow.models.srflow import SRFlow

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos" / "eval" / "lr_x4"
TEMPERATURES = (0.0, 0.8, 1.0)


def _area(array: object, size: tuple[int, int]) -> torch.Tensor:
    x = torch.as_tensor(array).float() / 255
    x = x[..., :3].permute(2, 0, 1) if x.dim() == 3 else x.expand(3, -1, -1)
    return F.interpolate(x[None], size=size, mode="area")[0]


def inputs(photos: int) -> dict[str, torch.Tensor]:
    """The LR inputs of the table, by name."""
    found = {}
    for path in sorted(PHOTOS.glob("*.png"))[:photos]:
        lr = read_image(path).rgb
        top, left = (lr.shape[1] - 96) // 2, (lr.shape[2] - 96) // 2
        found[path.stem] = lr[:, top : top + 96, left : left + 96]
    checker = (torch.arange(64)[:, None] // 4 + torch.arange(64)[None] // 4) % 2
    found |= {
        "noise (torch.rand)": torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0)),
        "logo": _area(skimage_data.logo(), (125, 125)),
        "checkerboard": checker.float().expand(3, 64, 64).clone(),
        "coffee": _area(skimage_data.coffee(), (100, 150)),
        "text": _area(skimage_data.text(), (43, 86)),
    }
    return found


def lr_psnr(hr: torch.Tensor, lr: torch.Tensor) -> float:
    """PSNR (dB) of ``hr`` (``(1, 3, H, W)`` in [0, 1]) downscaled 4x against ``lr``."""
    down = imresize(hr.double(), scale=1 / 4).clamp(0, 1)
    mse = float((down - lr[None].double()).square().mean())
    return 10 * math.log10(1 / max(mse, 1e-12))


@torch.no_grad()
def decode(model: SRFlow, lr: torch.Tensor, temperature: float) -> torch.Tensor:
    """One sample (seed 0), unclamped."""
    batch = lr[None]
    shapes = model.latent_shapes(batch)
    latents = model.sample_latents(shapes, temperature, torch.Generator().manual_seed(0))
    return model.decode(batch, latents)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--photos", type=int, default=8)
    args = parser.parse_args()
    model = load_model(args.model)
    assert isinstance(model, SRFlow) and model.flow.inverse_bounds is not None, "no bounds"
    bounds = model.flow.inverse_bounds
    header = "| input | " + " | ".join(f"T={t}: diverged, changed, LR-PSNR" for t in
                                        TEMPERATURES) + " |"  # fmt: skip
    print(header)
    print("|" + "---|" * (len(TEMPERATURES) + 1))
    warnings.simplefilter("ignore")
    for name, lr in inputs(args.photos).items():
        h, w = lr.shape[1:]
        lr = lr[:, : h - h % 8, : w - w % 8].contiguous()
        cells = []
        for t in TEMPERATURES:
            model.flow.inverse_bounds = None
            raw = decode(model, lr, t)
            model.flow.inverse_bounds = bounds
            bounded = decode(model, lr, t)
            before, after = (100 * count_diverged(x)[0] / x[0].numel() for x in (raw, bounded))
            q = [torch.round(x.nan_to_num(0).clamp(0, 1) * 255) for x in (raw, bounded)]
            changed = 100 * float((q[0] != q[1]).any(dim=1).float().mean())
            psnr = [lr_psnr(x / 255, lr) for x in q]
            cells.append(f"{before:.2f} → {after:.2f} %, {changed:.2f} %, "
                         f"{psnr[0]:.1f} → {psnr[1]:.1f} dB")  # fmt: skip
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
