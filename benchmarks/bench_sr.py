"""Time and peak memory of diverse super-resolution with a full published architecture.

    python benchmarks/bench_sr.py [--sizes 256 1024] [--samples 10] [--tile 128]
        [--untiled-max 256] [--device cpu] [--max-tiles K] [--model SRFlow_DF2K_4X]

``--model`` names any published architecture (``HCFlow_SR_DF2K_4X``, ...; docs/models.md),
built with random weights; each model has its own section in ``benchmarks/RESULTS.md``.

For each LR size (square, random content and random weights: the cost does not depend on
them) it runs, each in a fresh process after a small warm-up call:

* ``n``: :class:`SuperResolver` drawing ``--samples`` samples in one call (encoder and every
  conditioning-only computation once per image, or once per tile when tiled; samples batched);
* ``1``: the same with one sample.

The baseline without reuse runs the model once per sample (encoder and conditioning recomputed
every time): its time is ``samples`` times the one-sample run, which costs the same per sample,
and its peak memory is the one-sample run's. Sizes above ``--untiled-max`` are tiled with
``--tile`` (LR pixels) and ``--tile-overlap``. The table goes to ``benchmarks/RESULTS.md``.

``--max-tiles K`` (for slow machines) decodes only the K largest windows of a tiled image: the
whole-image latents and output are still allocated, so the peak memory is the real one, and the
time is scaled by (area of all windows) / (area of the K windows), which slightly overstates it
(the per-image work, e.g. drawing the latents, is scaled too).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from harness import RESULTS, machine_description, measure, run_case_in_subprocess, write_section

from srflow.families import family_of, load_preset
from srflow.inference import tiling
from srflow.inference.pipeline import SuperResolver

DEFAULT_MODEL = "SRFlow_DF2K_4X"


def _build(name: str) -> torch.nn.Module:
    config = load_preset(name)
    return family_of(config).build(config)


def _limit_tiles(max_tiles: int) -> list[float]:
    """Make the pipeline decode only the ``max_tiles`` largest windows of each plan.

    Returns a list that receives, per plan, the ratio of all windows' area to the decoded
    windows' area (the factor that extrapolates the time to the whole image).
    """
    plan_all = tiling.plan_tiles
    ratios: list[float] = []

    def area(t: tiling.Tile) -> int:
        return (t.win_y[1] - t.win_y[0]) * (t.win_x[1] - t.win_x[0])

    def plan_some(*args: object, **kwargs: object) -> list[tiling.Tile]:
        tiles = plan_all(*args, **kwargs)  # type: ignore[arg-type]
        chosen = sorted(tiles, key=area, reverse=True)[:max_tiles]
        ratios.append(sum(map(area, tiles)) / sum(map(area, chosen)))
        return chosen

    tiling.plan_tiles = plan_some  # decode_tiled looks it up at call time
    return ratios


def _case(args: argparse.Namespace) -> dict[str, float]:
    torch.manual_seed(0)
    resolver = SuperResolver(_build(args.model), device=args.device)
    lr = torch.rand(3, args.size, args.size)
    tile = args.tile if args.size > args.untiled_max else None
    options = dict(temperature=0.8, seed=0, tile=tile, tile_overlap=args.tile_overlap)
    resolver.super_resolve(torch.rand(3, 8, 8), samples=2, **options)  # warm-up
    samples = args.samples if args.case == "n" else 1
    ratios = _limit_tiles(args.max_tiles) if tile and args.max_tiles else []
    result = measure(lambda: resolver.super_resolve(lr, samples=samples, **options), args.device)
    if ratios:
        result["measured_seconds"] = result["seconds"]
        result["seconds"] *= ratios[-1]  # upper bound: the per-image work is scaled too
        result["windows_timed"] = args.max_tiles
        result["area_ratio"] = ratios[-1]
    return result


def _mb(row: dict[str, float]) -> str:
    whole = row.get("process_peak_mb")
    return f"{row['peak_mb']:.0f}" + (f" ({whole:.0f})" if whole is not None else "")


def _table(args: argparse.Namespace, rows: dict[int, dict[str, dict[str, float]]]) -> str:
    model = _build(args.model)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    n, s = args.samples, model.config.scale
    lines = [
        f"Machine: {machine_description(args.device)}. {args.model} ({params:.1f} M "
        f"parameters, random weights), float32, {n} samples at temperature 0.8. Sizes above "
        f"{args.untiled_max} are tiled ({args.tile} LR px tiles, {args.tile_overlap} px "
        "overlap). Baseline: the model run once per sample (encoder and conditioning "
        f"recomputed), i.e. {n} x the one-sample run. Peak MB: the call's peak resident "
        "memory above the loaded model, and in brackets the whole process's peak.",
        "",
        f"| LR size | HR size | tiled | {n} samples (s) | peak MB | 1 sample (s) | peak MB "
        f"| baseline {n} x 1 (s) | {n} samples / 1 sample | {n} samples / baseline |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, r in rows.items():
        many, one = r["n"], r["1"]
        baseline = n * one["seconds"]
        tiled = "yes" if size > args.untiled_max else "no"
        if "area_ratio" in many:
            tiled += (f" (time: {many['windows_timed']} largest windows timed, x "
                      f"{many['area_ratio']:.1f} by window area)")  # fmt: skip
        lines.append(
            f"| {size}x{size} | {s * size}x{s * size} | {tiled} | {many['seconds']:.1f} | "
            f"{_mb(many)} | {one['seconds']:.1f} | {_mb(one)} | "
            f"{baseline:.1f} | {many['seconds'] / one['seconds']:.2f} | "
            f"{many['seconds'] / baseline:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024], help="LR sides")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--tile", type=int, default=128, help="LR tile side for large inputs")
    parser.add_argument("--tile-overlap", type=int, default=16)
    parser.add_argument("--untiled-max", type=int, default=256, help="largest untiled size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-tiles", type=int, default=0,
                        help="tiled sizes: decode only this many (largest) windows and "
                        "extrapolate the time by window area (0: all)")  # fmt: skip
    parser.add_argument("--model", default=DEFAULT_MODEL, help="published architecture")
    parser.add_argument("--no-record", action="store_true", help="do not write RESULTS.md")
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=["n", "1"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(_case(args)))
        return
    script = Path(__file__).resolve()
    common = ["--samples", str(args.samples), "--tile", str(args.tile), "--tile-overlap",
              str(args.tile_overlap), "--untiled-max", str(args.untiled_max), "--device",
              args.device, "--max-tiles", str(args.max_tiles), "--model", args.model]  # fmt: skip
    rows: dict[int, dict[str, dict[str, float]]] = {}
    for size in args.sizes:
        rows[size] = {}
        for case in ("n", "1"):
            rows[size][case] = run_case_in_subprocess(script, case, [*common, "--size", str(size)])
            print(f"size {size}, {case}: {rows[size][case]}", flush=True)
    table = _table(args, rows)
    print(table)
    if not args.no_record:
        if not RESULTS.exists():
            RESULTS.write_text(
                f"# Benchmark results\n\nMachine: {machine_description(args.device)}\n"
            )
        suffix = "" if args.model == DEFAULT_MODEL else f", {args.model}"
        write_section(f"bench_sr ({args.device}{suffix})", table)


if __name__ == "__main__":
    main()
