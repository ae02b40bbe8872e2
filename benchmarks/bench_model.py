"""Every published architecture: parameters, time and peak memory of encode and of sampling.

    python benchmarks/bench_model.py [--device cpu|cuda] [--lr-size 64] [--models NAME ...]

Random weights (the speed does not depend on them), one LR input of ``--lr-size``; each case
runs in a fresh process after one warm-up call. Cases: ``encode`` (HR -> latents and
likelihood), ``sample_n1`` and ``sample_n10`` (1 and 10 samples at temperature 0.8; the
encoder runs once per image however many samples are drawn). Every model is also given as a
ratio to the SRFlow model of its scale (DF2K 4x or 8x) measured in the same run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from harness import machine_description, measure, run_case_in_subprocess, write_section

from srflow.families import family_of, published_models

CASES = ("encode", "sample_n1", "sample_n10")
BASELINE = {4: "SRFlow_DF2K_4X", 8: "SRFlow_DF2K_8X"}


def _published(name: str):  # noqa: ANN202 (benchmark helper)
    for _, published in published_models():
        if published.name == name:
            return published
    raise SystemExit(f"unknown model {name!r}")


def _case(name: str, case: str, device: str, lr_size: int) -> dict[str, float]:
    torch.manual_seed(0)
    config = _published(name).config
    model = family_of(config).build(config).eval().to(device)
    s = config.scale
    lr = torch.rand(1, 3, lr_size, lr_size, device=device)
    hr = torch.rand(1, 3, lr_size * s, lr_size * s, device=device)
    g = torch.Generator().manual_seed(0)
    calls = {
        "encode": lambda: model.encode(hr, lr),
        "sample_n1": lambda: model.sample(lr, 0.8, n=1, generator=g),
        "sample_n10": lambda: model.sample(lr, 0.8, n=10, generator=g),
    }
    with torch.no_grad():
        small = torch.rand(1, 3, 8, 8, device=device)
        model.sample(small, 0.8, n=1, generator=g)  # warm-up (allocator, kernels)
        result = measure(calls[case], device)
    result["params"] = float(sum(p.numel() for p in model.parameters()))
    return result


def _table(rows: dict[str, dict[str, dict[str, float]]], args: argparse.Namespace) -> str:
    lines = [
        f"Machine: {machine_description(args.device)}. Random weights, one "
        f"{args.lr_size}x{args.lr_size} LR input, float32, temperature 0.8. Ratios: time and "
        "peak memory over the SRFlow DF2K model of the same scale in this run; "
        "'10 / 10x1': 10 samples in one call over ten one-sample calls.",
        "",
        "| model | parameters (M) | encode (s) | encode peak (MB) | 10 samples (s) | "
        "10 samples peak (MB) | encode time vs SRFlow | 10 samples time vs SRFlow | "
        "10 samples memory vs SRFlow | 10 / 10x1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        base = rows.get(BASELINE[_published(name).config.scale])

        def ratio(case: str, key: str, r: dict = r, base: dict | None = base) -> str:
            return f"{r[case][key] / base[case][key]:.2f}" if base else "-"

        reuse = r["sample_n10"]["seconds"] / (10 * r["sample_n1"]["seconds"])
        lines.append(
            f"| {name} | {r['encode']['params'] / 1e6:.1f} | {r['encode']['seconds']:.2f} | "
            f"{r['encode']['peak_mb']:.0f} | {r['sample_n10']['seconds']:.2f} | "
            f"{r['sample_n10']['peak_mb']:.0f} | {ratio('encode', 'seconds')} | "
            f"{ratio('sample_n10', 'seconds')} | {ratio('sample_n10', 'peak_mb')} | {reuse:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lr-size", type=int, default=64)
    parser.add_argument("--models", nargs="+", default=[p.name for _, p in published_models()])
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(_case(args.model, args.case, args.device, args.lr_size)))
        return
    script = Path(__file__).resolve()
    extra = ["--device", args.device, "--lr-size", str(args.lr_size)]
    rows = {}
    for name in args.models:
        rows[name] = {
            case: run_case_in_subprocess(script, case, [*extra, "--model", name])
            for case in CASES
        }
        print(f"{name}: " + ", ".join(f"{c} {rows[name][c]['seconds']:.1f} s" for c in CASES))
    table = _table(rows, args)
    print(table)
    write_section(f"bench_model ({args.device})", table)


if __name__ == "__main__":
    main()
