"""How much tiled super-resolution differs from untiled, per tile size and overlap.

    python benchmarks/tiling_accuracy.py --model MODEL [--image LR.png] [--crop 128]
        [--tiles 32 48 64] [--overlaps 8 16 32] [--doc docs/tiling.md --label NAME]

``--model tiny`` uses the tiny test preset with random weights; otherwise a model file (default:
the embedded model). The image is a centre crop of an LR photograph (default: the first of
``data/photos/eval/lr_x4``). The same latents are used tiled and untiled (one latent field for
the whole image), so every difference comes from the context cut-off at the tile windows.
Differences are in 8-bit levels of the clamped output, over all output pixels and over the
*interior* of the tile cores (at least ``--margin`` LR pixels away from every seam). With
``--doc`` the table replaces the block of that label in the Markdown file.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import torch

from srflow.checkpoints import load_model
from srflow.data.image_io import read_image
from srflow.families import load_preset
from srflow.inference.api import default_model_path
from srflow.inference.pipeline import SuperResolver
from srflow.inference.tiling import plan_tiles
from srflow.models.srflow import SRFlow

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos" / "eval" / "lr_x4"


def _model(name: str | None) -> SRFlow:
    if name == "tiny":
        model = SRFlow(load_preset("tiny"), generator=torch.Generator().manual_seed(1))
        gen = torch.Generator().manual_seed(2)
        with torch.no_grad():  # leave the zero initialisation: every layer does something
            for p in model.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
        return model.eval()
    path = name or default_model_path()
    if path is None:
        raise SystemExit("no embedded model in this install: pass --model PATH (or tiny)")
    return load_model(path)


def _seam_distance_mask(hw: tuple[int, int], tile: int, overlap: int, m: int, margin: int,
                        scale: int) -> torch.Tensor:  # fmt: skip
    """HR pixels at least ``margin`` LR pixels from every seam between tile cores."""
    mask = torch.zeros(hw[0] * scale, hw[1] * scale, dtype=torch.bool)
    for t in plan_tiles(hw, tile, overlap, m):
        y0 = t.core_y[0] + (margin if t.core_y[0] else 0)
        y1 = t.core_y[1] - (margin if t.core_y[1] < hw[0] else 0)
        x0 = t.core_x[0] + (margin if t.core_x[0] else 0)
        x1 = t.core_x[1] - (margin if t.core_x[1] < hw[1] else 0)
        mask[y0 * scale : y1 * scale, x0 * scale : x1 * scale] = True
    return mask


def measure(args: argparse.Namespace) -> tuple[str, list[dict[str, float]]]:
    """A caption naming the model and image, and one row per (tile, overlap): differences to
    the untiled output."""
    resolver = SuperResolver(_model(args.model), device="cpu")
    image = args.image or sorted(PHOTOS.glob("*.png"))[0]
    rgb = read_image(image).rgb
    h, w = rgb.shape[1:]
    c = min(args.crop, h, w)
    rgb = rgb[:, (h - c) // 2 : (h - c) // 2 + c, (w - c) // 2 : (w - c) // 2 + c]
    run = dict(temperature=args.temperature, samples=args.samples, seed=args.seed)
    untiled = resolver.super_resolve(rgb, **run) * 255
    params = sum(p.numel() for p in resolver.model.parameters()) / 1e6
    model = {"tiny": "tiny preset, random weights", None: "embedded default"}.get(
        args.model, f"`{args.model}`"
    )
    caption = (f"Model: {model} ({params:.2f} M parameters); image "
               f"{Path(image).name}, {c}x{c} LR centre crop, {args.samples} sample(s), "
               f"temperature {args.temperature}, seed {args.seed}.")  # fmt: skip
    print(caption)
    rows = []
    for tile in args.tiles:
        for overlap in args.overlaps:
            start = time.perf_counter()
            tiled = resolver.super_resolve(rgb, **run, tile=tile, tile_overlap=overlap) * 255
            seconds = time.perf_counter() - start
            diff = (tiled - untiled).abs()
            per_pixel = diff.amax(dim=1)  # (samples, H, W): worst channel
            mask = _seam_distance_mask((c, c), tile, overlap,
                                       resolver.model.config.size_multiple_lr, args.margin,
                                       resolver.scale)  # fmt: skip
            rounded = (tiled.round() != untiled.round()).any(dim=1)
            rows.append({
                "tile": tile, "overlap": overlap, "max": diff.max().item(),
                "mean": diff.mean().item(), "differ": rounded.float().mean().item(),
                "max_interior": per_pixel[:, mask].max().item(),
                "differ_interior": rounded[:, mask].float().mean().item(), "seconds": seconds,
            })  # fmt: skip
            print(rows[-1], flush=True)
    return caption, rows


def markdown(caption: str, rows: list[dict[str, float]], margin: int) -> str:
    """The results as a Markdown table under ``caption``."""
    lines = [
        caption,
        "",
        f"| tile | overlap | max | mean | pixels differing | max, interior (>= {margin} px "
        "from seams) | pixels differing, interior |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['tile']} | {r['overlap']} | {r['max']:.3g} | {r['mean']:.1e} | "
            f"{100 * r['differ']:.3f} % | {r['max_interior']:.3g} | "
            f"{100 * r['differ_interior']:.3f} % |"
        )
    return "\n".join(lines) + "\n"


def update_doc(doc: Path, label: str, body: str) -> None:
    """Replace the text between the begin/end markers of ``label`` (appended if absent)."""
    begin, end = f"<!-- begin tiling: {label} -->\n", f"<!-- end tiling: {label} -->\n"
    text = doc.read_text() if doc.exists() else ""
    block = begin + body + end
    pattern = re.escape(begin) + ".*?" + re.escape(end)
    if re.search(pattern, text, flags=re.S):
        text = re.sub(pattern, lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block
    doc.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file, or 'tiny' (default: the embedded model)")
    parser.add_argument("--image", type=Path, help="LR image (default: first eval photo)")
    parser.add_argument("--crop", type=int, default=128, help="centre crop side, LR pixels")
    parser.add_argument("--tiles", type=int, nargs="+", default=[32, 48, 64])
    parser.add_argument("--overlaps", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--margin", type=int, default=4, help="LR pixels from the seams")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--doc", type=Path, help="Markdown file to update")
    parser.add_argument("--label", default="model", help="name of the block in --doc")
    args = parser.parse_args()
    table = markdown(*measure(args), args.margin)
    print(table)
    if args.doc:
        update_doc(args.doc, args.label, table)


if __name__ == "__main__":
    main()
