"""Calibrate a model's inverse bounds on its training photos and store them in the model file.

    python scripts/calibrate_inverse_bounds.py src/srflow/weights/default_x4.safetensors \
        data/photos/train

Each training photo is downscaled by the model's scale (MATLAB bicubic, as in training) and
its central 96x96 LR crop decoded at temperatures 0, 0.8 and 1.0 (srflow.inference.bounds).
The weights are unchanged; the file is rewritten atomically with the bounds in its metadata.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from srflow.checkpoints import load_model, save_model
from srflow.data.image_io import IMAGE_SUFFIXES, read_image
from srflow.data.resize import imresize
from srflow.models.inverse_bounds import DEFAULT_MARGIN, calibrate_inverse_bounds
from srflow.models.srflow import SRFlow

CROP = 96


def training_lrs(folder: Path, scale: int) -> list[torch.Tensor]:
    """Central LR crops of the photos in ``folder``."""
    crops = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        lr = imresize(read_image(path).rgb[None].double(), scale=1 / scale)[0]
        lr = lr.float().clamp(0, 1)
        top, left = max(0, (lr.shape[1] - CROP) // 2), max(0, (lr.shape[2] - CROP) // 2)
        crops.append(lr[:, top : top + CROP, left : left + CROP])
    return crops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path, help="our .safetensors model (rewritten)")
    parser.add_argument("photos", type=Path, help="folder of the model's training photos")
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    model = load_model(args.model)
    if not isinstance(model, SRFlow):
        parser.error(f"{args.model}: inverse bounds apply to SRFlow-family models")
    lrs = training_lrs(args.photos, model.config.scale)
    model.flow.inverse_bounds = calibrate_inverse_bounds(model, lrs, margin=args.margin)
    save_model(model, args.model)
    logging.info("%s: bounds %s", args.model, [round(b, 2) for b in model.flow.inverse_bounds])


if __name__ == "__main__":
    main()
