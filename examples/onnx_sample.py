"""Sample an srflow ONNX export with onnxruntime, numpy and pillow only (no PyTorch).

    python examples/onnx_sample.py onnx_default examples/astronaut_lr.png out.png -t 0.8 -n 2

The folder is what ``srflow export-onnx -o onnx_default`` wrote; docs/onnx.md explains each
step. numpy draws the latents here, so a seed gives other (equally valid) samples than
``srflow sr --seed`` with the same number, which draws them with PyTorch's generator.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("folder", type=Path)
parser.add_argument("image", type=Path)
parser.add_argument("output", type=Path)
parser.add_argument("-t", "--temperature", type=float, default=0.8)
parser.add_argument("-n", "--samples", type=int, default=1)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

manifest = json.loads((args.folder / "manifest.json").read_text())
conditioning = onnxruntime.InferenceSession(str(args.folder / manifest["graphs"]["conditioning"]))
sampling = onnxruntime.InferenceSession(str(args.folder / manifest["graphs"]["sampling"]))

# The LR as (1, 3, h, w) float32 in [0, 1], padded at the bottom and right (mirrored) to the
# model's size multiple; the output is cropped back.
lr = np.asarray(Image.open(args.image).convert("RGB"), dtype=np.float32) / 255
h, w = lr.shape[:2]
m, s = manifest["size_multiple_lr"], manifest["scale"]
lr = np.pad(lr, ((0, -h % m), (0, -w % m), (0, 0)), mode="reflect")
lr = np.ascontiguousarray(lr.transpose(2, 0, 1)[None])

# Once per image: the conditioning tensors (NCSR also takes the noise level to assume).
inputs = {"lr": lr, "noise_level": np.zeros((1, 1, 1, 1), np.float32)}
wanted = set(manifest["inputs"]["conditioning"])
features = conditioning.run(None, {name: x for name, x in inputs.items() if name in wanted})
feeds = {**inputs, **{f"feature{i}": f for i, f in enumerate(features)}}

# Per sample: latents N(0, t^2) in the manifest's shapes, then the HR image.
rng = np.random.default_rng(args.seed)
hr_h, hr_w = lr.shape[2] * s, lr.shape[3] * s
for k in range(args.samples):
    for i, spec in enumerate(manifest["latents"]):
        d = spec["hr_divisor"]
        shape = (1, spec["channels"], hr_h // d, hr_w // d)
        feeds[f"latent{i}"] = (rng.standard_normal(shape) * args.temperature).astype(np.float32)
    wanted = set(manifest["inputs"]["sampling"])
    (hr,) = sampling.run(None, {name: x for name, x in feeds.items() if name in wanted})
    image = np.clip(hr[0, :, : h * s, : w * s], 0, 1).transpose(1, 2, 0)
    path = args.output if args.samples == 1 else args.output.with_stem(f"{args.output.stem}_{k}")
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(path)
    print(path)  # noqa: T201 (a script: it says what it wrote)
