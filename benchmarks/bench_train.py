"""Training speed and peak memory of the full DF2K 4x SRFlow (random weights).

    python benchmarks/bench_train.py [--device cpu|cuda] [--steps 3] [--batch 4] [--patch 160]

Runs the trainer's own step (per-sample dequantization, NLL, backward, gradient clipping,
non-finite guard, fused Adam) on random 8-bit patches with the encoder trainable (the costlier
phase) and once more with it frozen (the first half of the published recipe). Two warm-up steps
are not timed (their time, with any compilation, is the last column). Prints a Markdown table.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` (tensors only, not the caching
allocator's reserve); on the CPU the process's peak resident set size (``ru_maxrss``), which
includes the interpreter, torch and the model, measured in a fresh process per phase.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from harness import machine_description, write_section

from srflow.families import family_of, load_preset
from srflow.train.config import RunConfig
from srflow.train.guard import NonFiniteGuard
from srflow.train.loop import optimizer_step
from srflow.train.setup import build_optimizer, configure_backends, set_trainable


def _run(
    device_name: str, phase: str, steps: int, batch: int, patch: int, compile_model: bool
) -> dict[str, float]:
    device = torch.device(device_name)
    configure_backends(device, tf32=True)
    cfg = RunConfig(model=load_preset("srflow_df2k_x4"))
    family = family_of(cfg.model)
    model = family.build(cfg.model, torch.Generator().manual_seed(0)).to(device).train()
    objective = family.objective(model, cfg.train.losses)
    used = objective.trained_parameters("nll", device)
    loss_fn = torch.compile(objective) if compile_model else objective
    trainable = set_trainable(model, phase, used)  # type: ignore[arg-type]
    optimizer = build_optimizer(model, "nll", cfg, used, device)
    generator = torch.Generator(device=device)
    hr = torch.randint(0, 256, (batch, 3, patch, patch), device=device).float() / 255
    lr = torch.nn.functional.avg_pool2d(hr, 4)

    def step() -> None:
        noise = objective.noise(tuple(hr.shape[1:]), list(range(batch)), generator, device)
        loss = loss_fn(hr, lr, noise, "nll").mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(trainable, 100.0, foreach=True)
        optimizer_step(optimizer, NonFiniteGuard.is_bad(loss.detach(), norm))

    warmup = time.perf_counter()
    step()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    warmup = time.perf_counter() - warmup
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = (time.perf_counter() - start) / steps
    return {"s_per_it": seconds, "it_per_s": 1 / seconds, "peak_mb": peak, "warmup_s": warmup}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per phase")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--patch", type=int, default=160, help="HR patch side")
    parser.add_argument("--compile", action="store_true", help="torch.compile the loss")
    parser.add_argument("--no-record", action="store_true", help="do not write RESULTS.md")
    parser.add_argument("--phase", default=None, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.phase:
        print(
            json.dumps(
                _run(args.device, args.phase, args.steps, args.batch, args.patch, args.compile)
            )
        )
        return
    lines = [
        f"Machine: {machine_description(args.device)}. SRFlow DF2K 4x training (random "
        f"weights), batch {args.batch}, HR patch {args.patch}, {args.steps} timed steps after "
        "2 warm-up steps; peak memory: the process's peak resident set (CPU) or the peak of "
        "allocated tensors (CUDA).",
        "",
        "| encoder | it/s | s/it | peak memory (MiB) | warm-up (s) |",
        "|---|---|---|---|---|",
    ]
    for phase, label in (("nll", "trained"), ("nll_frozen", "frozen")):
        out = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--phase", phase],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        r = json.loads(out.stdout.strip().splitlines()[-1])
        lines.append(f"| {label} | {r['it_per_s']:.3f} | {r['s_per_it']:.3f} | "
                     f"{r['peak_mb']:.0f} | {r['warmup_s']:.1f} |")  # fmt: skip
        print(lines[-1], flush=True)
    table = "\n".join(lines) + "\n"
    print(table)
    if not args.no_record:
        write_section(f"bench_train ({args.device})", table)


if __name__ == "__main__":
    main()
