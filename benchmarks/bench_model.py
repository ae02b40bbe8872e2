"""Time and peak memory of the full DF2K 4x SRFlow: encode, and sampling N=1 / N=10.

    python benchmarks/bench_model.py [--device cpu|cuda] [--lr-size 128]

Random weights (the speed does not depend on them). Each case runs in a fresh process after
one warm-up call. Sampling N images runs the RRDB encoder once (``SRFlow.sample``); the table
also shows N separate N=1 calls' cost for comparison.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from harness import machine_description, measure, run_case_in_subprocess, write_section

from srflow.config.presets import load_preset
from srflow.models.srflow import SRFlow


def _case(case: str, device: str, lr_size: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = SRFlow(load_preset("srflow_df2k_x4")).eval().to(device)
    lr = torch.rand(1, 3, lr_size, lr_size, device=device)
    hr = torch.rand(1, 3, lr_size * 4, lr_size * 4, device=device)
    g = torch.Generator().manual_seed(0)
    calls = {
        "encode": lambda: model.encode(hr, lr),
        "sample_n1": lambda: model.sample(lr, 0.8, n=1, generator=g),
        "sample_n10": lambda: model.sample(lr, 0.8, n=10, generator=g),
    }
    with torch.no_grad():
        small = torch.rand(1, 3, 16, 16, device=device)
        model.sample(small, 0.8, n=1, generator=g)  # warm-up (allocator, kernels)
        return measure(calls[case], device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lr-size", type=int, default=128)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(_case(args.case, args.device, args.lr_size)))
        return
    script = Path(__file__).resolve()
    extra = ["--device", args.device, "--lr-size", str(args.lr_size)]
    rows = {
        c: run_case_in_subprocess(script, c, extra) for c in ("encode", "sample_n1", "sample_n10")
    }
    n1 = rows["sample_n1"]["seconds"]
    params = sum(p.numel() for p in SRFlow(load_preset("srflow_df2k_x4")).parameters()) / 1e6
    lines = [
        f"Machine: {machine_description(args.device)}. Full DF2K 4x architecture ({params:.1f} M "
        f"parameters, random weights), one {args.lr_size}x{args.lr_size} LR input "
        f"({args.lr_size * 4}x{args.lr_size * 4} output), float32.",
        "",
        "| case | time (s) | peak memory (MB) | time vs N x (N=1) |",
        "|---|---|---|---|",
    ]
    for case, n in (("encode", None), ("sample_n1", 1), ("sample_n10", 10)):
        r = rows[case]
        ratio = f"{r['seconds'] / (n * n1):.2f}" if n else "-"
        lines.append(f"| {case} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | {ratio} |")
    table = "\n".join(lines) + "\n"
    print(table)
    write_section(f"bench_model ({args.device})", table)


if __name__ == "__main__":
    main()
